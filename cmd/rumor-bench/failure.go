package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/rpc"
)

// FailureResult is figure 5: how long the failure detector takes to call
// an agent process killed with SIGKILL dead everywhere (and show its
// services down), and how long the same agent takes to be alive everywhere
// again after a restart from its data dir.
type FailureResult struct {
	Agents         int `json:"agents"`
	Trials         int `json:"trials"` // completed trials
	HeartbeatMs    int `json:"heartbeat_ms"`
	SuspectAfterMs int `json:"suspect_after_ms"`
	DeadAfterMs    int `json:"dead_after_ms"`
	PollMs         int `json:"poll_ms"`
	// Kill says what stopping an agent means here.
	Kill string `json:"kill"`
	// Detection runs from just before the SIGKILL until every survivor's
	// members view shows the victim dead and its svc entry reads Status
	// "down" with Up false.
	Detection benchstat.Summary `json:"detection"`
	// Suspect runs from the same moment until every survivor shows it
	// suspect (or already dead).
	Suspect benchstat.Summary `json:"suspect"`
	// Rejoin runs from just before the restarted process is started until
	// every agent (the restarted one included) shows every member alive
	// and the victim's svc entry up again.
	Rejoin benchstat.Summary `json:"rejoin"`
	// Reaped is how long after the SIGKILL the victim process was reaped.
	Reaped benchstat.Summary `json:"reaped"`
	// CPUCores is the bench's own average CPU use over the trials, in
	// cores, AgentCores the agent processes' (those alive at the end) and
	// OtherCores everyone else's. LoadStart is the 1-minute load average
	// when the phase began.
	LoadStart  float64 `json:"load_start"`
	CPUCores   float64 `json:"cpu_cores"`
	AgentCores float64 `json:"agent_cores"`
	OtherCores float64 `json:"other_cores"`
	// DetectionMs lists each trial's detection time in trial order.
	DetectionMs []float64 `json:"detection_ms"`
	// Victims lists the cluster index killed in each trial.
	Victims []int `json:"victims"`
}

// failureParams are figure 5's knobs.
type failureParams struct {
	agents                    int
	trials                    int
	heartbeat, suspect, dead  time.Duration
	poll                      time.Duration
	timeoutSlack, rejoinAfter time.Duration
}

// killMeaning explains, in the report, what "kill" is.
const killMeaning = "kill -9 (SIGKILL) of a `rumor agent` process: no goodbye or leave message; the kernel closes its sockets, " +
	"so survivors see the connections drop and then silence (dead is judged by local receive time)"

const fdService = "fd"

// fdInstance names agent i's svc instance in figure 5.
func fdInstance(i int) string { return fmt.Sprintf("a%02d", i) }

// victimFor picks the agent stopped in trial t: every agent but the
// bootstrap agent 0, in turn.
func victimFor(trial, agents int) int { return 1 + trial%(agents-1) }

// firstTimes records, per agent, the first time a condition held, and says
// when it has held for every agent that counts.
type firstTimes struct {
	at   []time.Time
	skip int // index that does not count (the victim); -1 for none
}

func newFirstTimes(n, skip int) *firstTimes { return &firstTimes{at: make([]time.Time, n), skip: skip} }

// mark records that agent i met the condition at t, unless it already had.
func (f *firstTimes) mark(i int, t time.Time) {
	if i != f.skip && f.at[i].IsZero() {
		f.at[i] = t
	}
}

// done reports whether every counted agent met the condition.
func (f *firstTimes) done(i int) bool { return i == f.skip || !f.at[i].IsZero() }

// all returns whether every counted agent met the condition, and the time
// the last of them did.
func (f *firstTimes) all() (time.Time, bool) {
	var last time.Time
	for i, t := range f.at {
		if i == f.skip {
			continue
		}
		if t.IsZero() {
			return time.Time{}, false
		}
		if t.After(last) {
			last = t
		}
	}
	return last, true
}

// missing returns the first counted agent that has not met the condition, or -1.
func (f *firstTimes) missing() int {
	for i := range f.at {
		if !f.done(i) {
			return i
		}
	}
	return -1
}

// memberState returns api's view of node id: alive, suspect, dead,
// unknown (listed but never heard since the agent started) or absent.
func memberState(ctx context.Context, api rpc.API, id string) string {
	ms, err := api.Members(ctx)
	if err != nil {
		return "error: " + err.Error()
	}
	for _, m := range ms {
		if m.Node == id {
			return m.State
		}
	}
	return "absent"
}

// runFailure starts fp.agents agent processes with the given detector
// settings, each owning one svc entry, and fp.trials times kills one
// non-bootstrap agent with SIGKILL, times its detection by polling the
// survivors' local APIs every fp.poll, restarts it from its data dir and
// waits until it is alive everywhere again.
func runFailure(ctx context.Context, fp failureParams, opt procOptions) (res FailureResult, err error) {
	n := fp.agents
	res = FailureResult{Agents: n, HeartbeatMs: int(fp.heartbeat / time.Millisecond),
		SuspectAfterMs: int(fp.suspect / time.Millisecond), DeadAfterMs: int(fp.dead / time.Millisecond),
		PollMs: int(fp.poll / time.Millisecond), Kill: killMeaning, LoadStart: benchstat.LoadAverage()}
	if n < 3 {
		return res, fmt.Errorf("failure detection needs at least 3 agents, got %d", n)
	}
	opt.heartbeat, opt.suspect, opt.dead = fp.heartbeat, fp.suspect, fp.dead
	c, err := startProcCluster(ctx, n, opt)
	if err != nil {
		return res, err
	}
	defer c.close()

	req := rpc.ServiceSet{Addr: "10.1.2.3:8080", Status: "up"}
	for i, a := range c.agents {
		if _, err := a.client.ServiceSet(ctx, fdService, fdInstance(i), req); err != nil {
			return res, fmt.Errorf("svc set on agent %d: %w", i, err)
		}
	}
	if err := waitAllAlive(ctx, c, time.Now().Add(fp.rejoinAfter)); err != nil {
		return res, fmt.Errorf("before the first trial: %w", err)
	}

	var detect, suspect, rejoin, reaped []time.Duration
	defer func() {
		res.Detection, res.Suspect, res.Rejoin, res.Reaped = benchstat.Summarize(detect), benchstat.Summarize(suspect), benchstat.Summarize(rejoin), benchstat.Summarize(reaped)
	}()
	meter, agents0 := startCPUMeter(), c.agentsCPU()
	defer func() {
		// Killed agents' CPU counts among the reaped children's; running
		// ones', restarted or not, by pid.
		res.CPUCores, res.AgentCores, res.OtherCores = meter.coresWith(c.agentsCPU() - agents0)
	}()
	for trial := range fp.trials {
		v := victimFor(trial, n)
		victim := c.agents[v]
		id := victim.id
		killed := time.Now()
		took, err := victim.kill()
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", trial, err)
		}
		reaped = append(reaped, took)

		sus, dead := newFirstTimes(n, v), newFirstTimes(n, v)
		deadline := killed.Add(fp.dead + fp.timeoutSlack)
		for {
			for i, a := range c.agents {
				if dead.done(i) {
					continue
				}
				st := memberState(ctx, a.client, id)
				now := time.Now()
				if st == "suspect" || st == "dead" {
					sus.mark(i, now)
				}
				if st != "dead" {
					continue
				}
				if s, err := a.client.ServiceGet(ctx, fdService, fdInstance(v)); err == nil && !s.Up && s.Status == "down" {
					dead.mark(i, time.Now())
				}
			}
			if _, ok := dead.all(); ok {
				break
			}
			if time.Now().After(deadline) {
				m := dead.missing()
				s, err := c.agents[m].client.ServiceGet(ctx, fdService, fdInstance(v))
				return res, fmt.Errorf("trial %d: agent %d not dead and down everywhere within %v of its kill: agent %d sees it %s, its svc %+v (%v)",
					trial, v, fp.dead+fp.timeoutSlack, m, memberState(ctx, c.agents[m].client, id), s, err)
			}
			if err := sleepCtx(ctx, fp.poll); err != nil {
				return res, err
			}
		}
		lastDead, _ := dead.all()
		lastSus, _ := sus.all()
		detect = append(detect, lastDead.Sub(killed))
		suspect = append(suspect, lastSus.Sub(killed))
		res.DetectionMs = append(res.DetectionMs, math.Round(benchstat.Ms(lastDead.Sub(killed))*10)/10)
		res.Victims = append(res.Victims, v)

		// Back from the same data dir: same identity (restart checks), same state.
		began := time.Now()
		if err := c.restart(ctx, v); err != nil {
			return res, fmt.Errorf("trial %d: restart agent %d: %w", trial, v, err)
		}
		if err := waitAllAlive(ctx, c, time.Now().Add(fp.rejoinAfter)); err != nil {
			return res, fmt.Errorf("trial %d, after restarting agent %d: %w", trial, v, err)
		}
		rejoin = append(rejoin, time.Since(began))
		res.Trials++
	}
	return res, nil
}

// waitAllAlive polls until every agent lists every agent as alive and sees
// every agent's figure-5 svc entry up, or the deadline passes.
func waitAllAlive(ctx context.Context, c *procCluster, deadline time.Time) error {
	if err := pollUntil(ctx, deadline, 50*time.Millisecond, func() error { return allAlive(ctx, c) }); err != nil {
		return fmt.Errorf("not every agent alive everywhere in time: %w", err)
	}
	return nil
}

// allAlive returns nil when every agent lists every agent alive and sees
// every agent's figure-5 svc entry up.
func allAlive(ctx context.Context, c *procCluster) error {
	if err := c.everyoneAlive(ctx); err != nil {
		return err
	}
	for _, a := range c.agents {
		for j := range c.agents {
			if s, err := a.client.ServiceGet(ctx, fdService, fdInstance(j)); err != nil || !s.Up {
				return fmt.Errorf("agent %d sees agent %d's svc entry %+v (%v)", a.i, j, s, err)
			}
		}
	}
	return nil
}
