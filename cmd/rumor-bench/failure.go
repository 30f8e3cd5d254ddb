package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/daemon"
	"github.com/rumor-dev/rumor/rpc"
)

// FailureResult is figure 5: how long the failure detector takes to call a
// stopped agent dead everywhere (and show its services down), and how long
// the same agent takes to be alive everywhere again after a restart.
type FailureResult struct {
	Agents         int `json:"agents"`
	Trials         int `json:"trials"` // completed trials
	HeartbeatMs    int `json:"heartbeat_ms"`
	SuspectAfterMs int `json:"suspect_after_ms"`
	DeadAfterMs    int `json:"dead_after_ms"`
	PollMs         int `json:"poll_ms"`
	// Kill says what stopping an agent means here.
	Kill string `json:"kill"`
	// Detection runs from the victim's Close() returning until every
	// survivor's Members() shows it dead and its svc entry reads Status
	// "down" with Up false.
	Detection benchstat.Summary `json:"detection"`
	// Suspect runs from the same moment until every survivor shows it
	// suspect (or already dead).
	Suspect benchstat.Summary `json:"suspect"`
	// Rejoin runs from just before daemon.New of the restart until every
	// agent (the restarted one included) shows every member alive and the
	// victim's svc entry up again.
	Rejoin benchstat.Summary `json:"rejoin"`
	// Close is how long the victim's Close() took.
	Close benchstat.Summary `json:"close"`
	// CPUCores and OtherCores are this process's and other processes'
	// average CPU use over the trials, in cores.
	// LoadStart is the 1-minute load average when the phase began.
	LoadStart  float64 `json:"load_start"`
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
	// DetectionMs lists each trial's detection time in trial order.
	DetectionMs []float64 `json:"detection_ms"`
	// Victims lists the cluster index stopped in each trial.
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

// killMeaning explains, in the report, what "kill" is in this process.
const killMeaning = "agent.Close() in-process: its loops stop and its connections close, with no goodbye or leave message; survivors see the connections drop and then silence (dead is judged by local receive time)"

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

// memberState returns a's view of node id: alive, suspect, dead, unknown
// (listed but never heard since a started) or absent.
func memberState(ctx context.Context, a *daemon.Agent, id string) string {
	ms, err := a.Members(ctx)
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

// runFailure starts fp.agents agents with the given detector settings, each
// owning one svc entry, and fp.trials times stops one non-bootstrap agent,
// times its detection, restarts it from its data dir and waits until it is
// alive everywhere again.
func runFailure(ctx context.Context, fp failureParams, p params) (res FailureResult, err error) {
	n := fp.agents
	res = FailureResult{Agents: n, HeartbeatMs: int(fp.heartbeat / time.Millisecond),
		SuspectAfterMs: int(fp.suspect / time.Millisecond), DeadAfterMs: int(fp.dead / time.Millisecond),
		PollMs: int(fp.poll / time.Millisecond), Kill: killMeaning, LoadStart: benchstat.LoadAverage()}
	if n < 3 {
		return res, fmt.Errorf("failure detection needs at least 3 agents, got %d", n)
	}
	opt := p.cluster
	opt.heartbeat = fp.heartbeat
	opt.configure = func(_ int, cfg *daemon.Config) {
		cfg.SuspectAfter, cfg.DeadAfter = fp.suspect, fp.dead
	}
	c, err := startCluster(ctx, n, opt)
	if err != nil {
		return res, err
	}
	defer c.close()

	req := rpc.ServiceSet{Addr: "10.1.2.3:8080", Status: "up"}
	for i, a := range c.agents {
		if _, err := a.ServiceSet(ctx, fdService, fdInstance(i), req); err != nil {
			return res, fmt.Errorf("svc set on agent %d: %w", i, err)
		}
	}
	if err := waitAllAlive(ctx, c, time.Now().Add(fp.rejoinAfter)); err != nil {
		return res, fmt.Errorf("before the first trial: %w", err)
	}

	var detect, suspect, rejoin, closing []time.Duration
	defer func() {
		res.Detection, res.Suspect, res.Rejoin, res.Close = benchstat.Summarize(detect), benchstat.Summarize(suspect), benchstat.Summarize(rejoin), benchstat.Summarize(closing)
	}()
	meter := startCPUMeter()
	defer func() { res.CPUCores, res.OtherCores = meter.cores() }()
	for trial := range fp.trials {
		v := victimFor(trial, n)
		id := c.agents[v].ID()
		closeAt := time.Now()
		if err := c.agents[v].Close(); err != nil {
			return res, fmt.Errorf("trial %d: close agent %d: %w", trial, v, err)
		}
		closed := time.Now()
		closing = append(closing, closed.Sub(closeAt))

		sus, dead := newFirstTimes(n, v), newFirstTimes(n, v)
		deadline := closed.Add(fp.dead + fp.timeoutSlack)
		for {
			for i, a := range c.agents {
				if dead.done(i) {
					continue
				}
				st := memberState(ctx, a, id)
				now := time.Now()
				if st == "suspect" || st == "dead" {
					sus.mark(i, now)
				}
				if st != "dead" {
					continue
				}
				if s, err := a.ServiceGet(ctx, fdService, fdInstance(v)); err == nil && !s.Up && s.Status == "down" {
					dead.mark(i, time.Now())
				}
			}
			if _, ok := dead.all(); ok {
				break
			}
			if time.Now().After(deadline) {
				m := dead.missing()
				s, err := c.agents[m].ServiceGet(ctx, fdService, fdInstance(v))
				return res, fmt.Errorf("trial %d: agent %d not dead and down everywhere within %v of its close: agent %d sees it %s, its svc %+v (%v)",
					trial, v, fp.dead+fp.timeoutSlack, m, memberState(ctx, c.agents[m], id), s, err)
			}
			if err := sleepCtx(ctx, fp.poll); err != nil {
				return res, err
			}
		}
		lastDead, _ := dead.all()
		lastSus, _ := sus.all()
		detect = append(detect, lastDead.Sub(closed))
		suspect = append(suspect, lastSus.Sub(closed))
		res.DetectionMs = append(res.DetectionMs, math.Round(benchstat.Ms(lastDead.Sub(closed))*10)/10)
		res.Victims = append(res.Victims, v)

		// Back from the same data dir: same identity, same state.
		began := time.Now()
		if err := c.restart(ctx, v, uint64(1000+trial)); err != nil {
			return res, fmt.Errorf("trial %d: %w", trial, err)
		}
		if got := c.agents[v].ID(); got != id {
			return res, fmt.Errorf("trial %d: agent %d came back as %s, want %s", trial, v, got, id)
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
func waitAllAlive(ctx context.Context, c *cluster, deadline time.Time) error {
	if err := pollUntil(ctx, deadline, 20*time.Millisecond, func() error { return allAlive(ctx, c) }); err != nil {
		return fmt.Errorf("not every agent alive everywhere in time: %w", err)
	}
	return nil
}

// allAlive returns nil when every agent lists every agent alive and sees
// every agent's figure-5 svc entry up.
func allAlive(ctx context.Context, c *cluster) error {
	if err := everyoneAlive(ctx, c); err != nil {
		return err
	}
	for i, a := range c.agents {
		for j := range c.agents {
			if s, err := a.ServiceGet(ctx, fdService, fdInstance(j)); err != nil || !s.Up {
				return fmt.Errorf("agent %d sees agent %d's svc entry %+v (%v)", i, j, s, err)
			}
		}
	}
	return nil
}
