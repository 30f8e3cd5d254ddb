package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// IdleResult is figure 8: N agents with the default membership settings
// left idle (heartbeats only) for a while. No agent is stopped, so every
// suspect or dead verdict any agent reaches about another is false.
type IdleResult struct {
	Agents         int     `json:"agents"`
	HeartbeatMs    int     `json:"heartbeat_ms"`
	SuspectAfterMs int     `json:"suspect_after_ms"`
	DeadAfterMs    int     `json:"dead_after_ms"`
	PollMs         int     `json:"poll_ms"`
	FormMs         float64 `json:"form_ms"`
	MinPeers       int     `json:"min_peers"`
	// IdleSeconds is how long the agents were watched, from the moment
	// every agent saw every member alive.
	IdleSeconds float64 `json:"idle_seconds"`
	// FalseDead and FalseSuspect count the changes of any agent's view of
	// another (live) agent to dead or to suspect during the idle time, as
	// the agents reported them: every membership change an agent makes is
	// one line in its log (agent.Options.Logger), so none is missed,
	// however brief. FalseSuspect includes suspicion on a lost-connection
	// hint.
	FalseDead    int `json:"false_dead"`
	FalseSuspect int `json:"false_suspect"`
	// Recovered counts changes back to alive during the idle time.
	Recovered int `json:"recovered"`
	// Joins counts "member joined" changes; every
	// agent hears every other once, so it is Agents*(Agents-1) when the
	// log hook works.
	Joins int `json:"joins"`
	// PolledDead, PolledSuspect and PolledOther count the changes to dead,
	// suspect or anything else but alive ("unknown") seen by polling
	// every agent's Members() every PollMs: a cross-check of the log
	// counts that misses verdicts shorter than a poll.
	PolledDead    int `json:"polled_dead"`
	PolledSuspect int `json:"polled_suspect"`
	PolledOther   int `json:"polled_other"`
	// Disconnects counts the changes of Members().Connected from true to
	// false seen by polling (connection churn, which hints suspicion).
	Disconnects int `json:"disconnects"`
	// LongestSilenceMs is the longest time since any agent had last heard
	// from any other (now minus Members().LastHeard) at any poll: the
	// margin to suspect_after and dead_after.
	LongestSilenceMs float64 `json:"longest_silence_ms"`
	// CPUCores and OtherCores are this process's (the N agents and the
	// poller) and other processes' average CPU use over the idle time, in
	// cores. LoadStart, LoadEnd and LoadMax are the 1-minute load average
	// when it began, ended, and the highest seen at a poll.
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
	LoadStart  float64 `json:"load_start"`
	LoadEnd    float64 `json:"load_end"`
	LoadMax    float64 `json:"load_max"`
	// Timeline has one entry per progress interval (a minute in the full
	// run), to relate verdicts to the machine's load when they came.
	Timeline []IdleProgress `json:"timeline,omitempty"`
	// Events lists the first maxIdleEvents false verdicts and recoveries.
	Events []IdleEvent `json:"events,omitempty"`
}

// IdleProgress is figure 8's state at the end of one progress interval.
type IdleProgress struct {
	AtSeconds float64 `json:"at_s"` // since the idle time began
	// FalseDead and FalseSuspect are the log counts so far.
	FalseDead    int `json:"false_dead"`
	FalseSuspect int `json:"false_suspect"`
	// Load is the 1-minute load average; CPUCores and OtherCores are the
	// cores this process and other processes used during the interval.
	Load       float64 `json:"load"`
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
}

// IdleEvent is one membership change during the idle time.
type IdleEvent struct {
	AtSeconds float64 `json:"at_s"`   // since the idle time began
	Observer  int     `json:"agent"`  // cluster index of the agent whose view changed
	Member    int     `json:"member"` // cluster index of the member (-1: unknown id)
	From      string  `json:"from,omitempty"`
	To        string  `json:"to"`
	Source    string  `json:"source"` // "log" or "poll"
}

// maxIdleEvents bounds IdleResult.Events.
const maxIdleEvents = 100

// idleParams are figure 8's knobs.
type idleParams struct {
	agents   int
	duration time.Duration
	poll     time.Duration
	progress time.Duration // print a progress line this often (0: never)
}

// verdicts counts membership changes reported by the agents' logs and
// seen by polling. Its methods are safe for concurrent use.
type verdicts struct {
	mu      sync.Mutex
	index   map[string]int // node id -> cluster index
	started time.Time      // zero: not counting yet (only joins are)
	ended   bool

	joins                     int
	dead, suspect, recovered  int
	polledDead, polledSuspect int
	polledOther, disconnects  int
	events                    []IdleEvent
	lastState                 []map[string]string // by observer: member id -> state
	lastConnected             []map[string]bool
	longestSilence            time.Duration
}

func newVerdicts(n int) *verdicts {
	v := &verdicts{lastState: make([]map[string]string, n), lastConnected: make([]map[string]bool, n)}
	for i := range n {
		v.lastState[i], v.lastConnected[i] = make(map[string]string), make(map[string]bool)
	}
	return v
}

// begin starts counting verdicts at t; index maps node ids to cluster indexes.
func (v *verdicts) begin(t time.Time, index map[string]int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.started, v.index = t, index
}

// end stops counting.
func (v *verdicts) end() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ended = true
}

// counting reports whether verdicts count now; v.mu must be held.
func (v *verdicts) counting() bool { return !v.started.IsZero() && !v.ended }

// event appends an event if there is room; v.mu must be held.
func (v *verdicts) event(at time.Time, observer int, member, from, to, source string) {
	if len(v.events) >= maxIdleEvents {
		return
	}
	m, ok := v.index[member]
	if !ok {
		m = -1
	}
	v.events = append(v.events, IdleEvent{AtSeconds: at.Sub(v.started).Seconds(), Observer: observer, Member: m, From: from, To: to, Source: source})
}

// logged records a membership change agent observer logged: change is
// "joined", "alive", "suspect" or "dead", was the previous state if known.
func (v *verdicts) logged(at time.Time, observer int, change, member, was string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if change == "joined" {
		v.joins++
		return
	}
	if !v.counting() {
		return
	}
	switch change {
	case "dead":
		v.dead++
	case "suspect":
		v.suspect++
	case "alive":
		v.recovered++
	default:
		return
	}
	v.event(at, observer, member, was, change, "log")
}

// observe records agent observer's Members() at time at, counting state
// and connection changes since its previous call.
func (v *verdicts) observe(at time.Time, observer int, ms []rpc.Member) {
	v.mu.Lock()
	defer v.mu.Unlock()
	last, conn := v.lastState[observer], v.lastConnected[observer]
	for _, m := range ms {
		if m.Self {
			continue
		}
		prev, seen := last[m.Node]
		last[m.Node] = m.State
		wasConnected := conn[m.Node]
		conn[m.Node] = m.Connected
		if !v.counting() {
			continue
		}
		if !m.LastHeard.IsZero() {
			v.longestSilence = max(v.longestSilence, at.Sub(m.LastHeard))
		}
		if seen && wasConnected && !m.Connected {
			v.disconnects++
		}
		if !seen || prev == m.State {
			continue
		}
		switch m.State {
		case "alive":
			continue
		case "dead":
			v.polledDead++
		case "suspect":
			v.polledSuspect++
		default:
			v.polledOther++
		}
		v.event(at, observer, m.Node, prev, m.State, "poll")
	}
}

// joinCount returns the joins logged so far.
func (v *verdicts) joinCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.joins
}

// fill copies the counts into r.
func (v *verdicts) fill(r *IdleResult) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r.Joins, r.FalseDead, r.FalseSuspect, r.Recovered = v.joins, v.dead, v.suspect, v.recovered
	r.PolledDead, r.PolledSuspect, r.PolledOther, r.Disconnects = v.polledDead, v.polledSuspect, v.polledOther, v.disconnects
	r.LongestSilenceMs = benchstat.Ms(v.longestSilence)
	r.Events = append([]IdleEvent(nil), v.events...)
}

// membershipLog is a slog.Handler that passes one agent's membership
// changes ("member joined", "member suspect", "member dead", "member
// alive", each with a "member" and maybe a "was" attribute) to verdicts
// and drops every other record.
type membershipLog struct {
	agent int
	v     *verdicts
}

// Enabled implements slog.Handler: membership changes log at Info or Warn.
func (h membershipLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle implements slog.Handler.
func (h membershipLog) Handle(_ context.Context, r slog.Record) error {
	change, ok := strings.CutPrefix(r.Message, "member ")
	if !ok {
		return nil
	}
	var member, was string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "member":
			member = a.Value.String()
		case "was":
			was = a.Value.String()
		}
		return true
	})
	if member != "" {
		h.v.logged(r.Time, h.agent, change, member, was)
	}
	return nil
}

// WithAttrs implements slog.Handler; the attributes are not needed.
func (h membershipLog) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup implements slog.Handler; groups are not needed.
func (h membershipLog) WithGroup(string) slog.Handler { return h }

// runIdle starts ip.agents agents with the agent's default heartbeat,
// suspect_after and dead_after, waits until every agent sees every member
// alive, then leaves them idle for ip.duration while counting every
// suspect and dead verdict, from the agents' logs and by polling Members().
func runIdle(ctx context.Context, out io.Writer, ip idleParams, p params) (res IdleResult, err error) {
	d := config.DefaultConfig()
	n := ip.agents
	res = IdleResult{Agents: n, HeartbeatMs: int(d.Heartbeat / time.Millisecond), SuspectAfterMs: int(d.SuspectAfter / time.Millisecond),
		DeadAfterMs: int(d.DeadAfter / time.Millisecond), PollMs: int(ip.poll / time.Millisecond)}
	v := newVerdicts(n)
	opt := p.cluster
	opt.heartbeat = d.Heartbeat
	opt.settle = 0 // no mesh to wait for: the idle time itself is the measurement
	opt.configure = func(_ int, cfg *config.Config) {
		cfg.Heartbeat, cfg.SuspectAfter, cfg.DeadAfter = d.Heartbeat, d.SuspectAfter, d.DeadAfter
	}
	opt.logger = func(i int) *slog.Logger { return slog.New(membershipLog{agent: i, v: v}) }
	c, err := startCluster(ctx, n, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.FormMs, res.MinPeers = benchstat.Ms(c.formed), c.minPeers
	fmt.Fprintf(out, "    formed in %.1f s (fewest peers %d)\n", c.formed.Seconds(), c.minPeers)

	index := make(map[string]int, n)
	for i, a := range c.agents {
		index[a.ID()] = i
	}
	observe := func(at time.Time) error {
		for i, a := range c.agents {
			ms, err := a.Members(ctx)
			if err != nil {
				return fmt.Errorf("agent %d: members: %w", i, err)
			}
			v.observe(at, i, ms)
		}
		return nil
	}
	if err := pollUntil(ctx, time.Now().Add(p.cluster.formTimeout), ip.poll, func() error { return everyoneAlive(ctx, c) }); err != nil {
		return res, fmt.Errorf("before the idle time: %w", err)
	}
	if err := observe(time.Now()); err != nil {
		return res, err
	}

	began := time.Now()
	v.begin(began, index)
	meter := startCPUMeter()
	res.LoadStart, res.LoadMax = benchstat.LoadAverage(), benchstat.LoadAverage()
	defer func() {
		v.end()
		res.IdleSeconds = time.Since(began).Seconds()
		res.CPUCores, res.OtherCores = meter.cores()
		res.LoadEnd = benchstat.LoadAverage()
		v.fill(&res)
		// Printed before the cluster closes, in case closing 30 agents
		// goes wrong.
		fmt.Fprintf(out, "    idle %.0f s: false dead %d (polled %d), false suspect %d (polled %d); CPU bench %.2f, others %.2f; load %.2f -> %.2f, max %.2f\n",
			res.IdleSeconds, res.FalseDead, res.PolledDead, res.FalseSuspect, res.PolledSuspect, res.CPUCores, res.OtherCores, res.LoadStart, res.LoadEnd, res.LoadMax)
	}()
	tick := time.NewTicker(ip.poll)
	defer tick.Stop()
	nextProgress, interval := began.Add(ip.progress), startCPUMeter()
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case now := <-tick.C:
			if err := observe(now); err != nil {
				return res, err
			}
			res.LoadMax = max(res.LoadMax, benchstat.LoadAverage())
			if now.Sub(began) >= ip.duration {
				if j := v.joinCount(); j != n*(n-1) {
					return res, fmt.Errorf("the membership log hook saw %d joins, want %d: the agents' log lines changed, so the log counts are not trustworthy (the polled counts still are)", j, n*(n-1))
				}
				return res, nil
			}
			if ip.progress > 0 && now.After(nextProgress) {
				nextProgress = nextProgress.Add(ip.progress)
				var r IdleResult
				v.fill(&r)
				pr := IdleProgress{AtSeconds: now.Sub(began).Seconds(), FalseDead: r.FalseDead, FalseSuspect: r.FalseSuspect, Load: benchstat.LoadAverage()}
				pr.CPUCores, pr.OtherCores = interval.cores()
				interval = startCPUMeter()
				res.Timeline = append(res.Timeline, pr)
				fmt.Fprintf(out, "    %v idle: false dead %d, false suspect %d; load %.2f, CPU bench %.2f, others %.2f\n",
					now.Sub(began).Round(time.Second), pr.FalseDead, pr.FalseSuspect, pr.Load, pr.CPUCores, pr.OtherCores)
			}
		}
	}
}

// everyoneAlive returns nil when every agent lists every agent alive.
func everyoneAlive(ctx context.Context, c *cluster) error {
	for i, a := range c.agents {
		ms, err := a.Members(ctx)
		if err != nil {
			return err
		}
		if len(ms) != len(c.agents) {
			return fmt.Errorf("agent %d lists %d members, want %d", i, len(ms), len(c.agents))
		}
		for _, m := range ms {
			if m.State != "alive" {
				return fmt.Errorf("agent %d sees %s %s", i, m.Node, m.State)
			}
		}
	}
	return nil
}

// runIdleFigure runs figure 8 if p.phases selects it and stores its result
// in rep; fail records its error.
func runIdleFigure(ctx context.Context, out io.Writer, p params, rep *Report, fail func(string, error)) {
	if !p.phases[8] || ctx.Err() != nil {
		return
	}
	ip := p.idle
	fmt.Fprintf(out, "[8] idle: %d agents with the default membership settings, idle for %v...\n", ip.agents, ip.duration)
	r, err := runIdle(ctx, out, ip, p)
	if err != nil {
		fail("idle", err)
	}
	if r.IdleSeconds > 0 || err == nil {
		rep.Idle = &r
	}
}

// printIdle prints figure 8.
func printIdle(tw io.Writer, rep Report, p params) {
	r := rep.Idle
	if r == nil {
		if p.phases[8] {
			fmt.Fprintln(tw, "\n8. Idle: (not measured)")
		}
		return
	}
	fmt.Fprintf(tw, "\n8. Idle: N=%d, heartbeat %v, suspect_after %v, dead_after %v (the agent's defaults); no agent stopped, idle %.0f s after every agent saw every member alive\n",
		r.Agents, msDur(r.HeartbeatMs), msDur(r.SuspectAfterMs), msDur(r.DeadAfterMs), r.IdleSeconds)
	fmt.Fprintf(tw, "   (formed in %.1f s, fewest peers %d); counted from every agent's membership log (every change) and by polling every agent's Members() every %d ms\n",
		r.FormMs/1000, r.MinPeers, r.PollMs)
	fmt.Fprintln(tw, "measure\tfrom the logs\tby polling\t")
	fmt.Fprintf(tw, "false dead verdicts\t%d\t%d\t\n", r.FalseDead, r.PolledDead)
	fmt.Fprintf(tw, "false suspect verdicts\t%d\t%d\t\n", r.FalseSuspect, r.PolledSuspect)
	fmt.Fprintf(tw, "back to alive\t%d\t\t\n", r.Recovered)
	fmt.Fprintf(tw, "other non-alive views\t\t%d\t\n", r.PolledOther)
	fmt.Fprintf(tw, "connections lost\t\t%d\t\n", r.Disconnects)
	fmt.Fprintf(tw, "longest silence between two agents\t\t%s ms\t\n", benchstat.FmtMs(r.LongestSilenceMs))
	fmt.Fprintf(tw, "CPU over the idle time: bench %.2f (%d agents and the poller), other processes %.2f, of %d cores; load average %.2f at the start, %.2f at the end, %.2f at most\n",
		r.CPUCores, r.Agents, r.OtherCores, rep.Machine.NumCPU, r.LoadStart, r.LoadEnd, r.LoadMax)
	for i, e := range r.Events {
		if i == 10 {
			fmt.Fprintf(tw, "   ... %d more in the JSON report\n", len(r.Events)-10)
			break
		}
		fmt.Fprintf(tw, "   at %.1f s: agent %d saw agent %d %s -> %s (%s)\n", e.AtSeconds, e.Observer, e.Member, e.From, e.To, e.Source)
	}
}
