// Command rumor-chaos is a Jepsen-style test of real rumor agents: five
// `rumor agent` processes, each in its own network namespace (by
// ../shared/netlab), two of them in a far region (100 ± 20 ms, 1 % loss), a
// workload of every kind of write through each agent's local API, and faults
// in seeded random order: partitions (halves, one node isolated, two halves
// joined by a bridge node), kill -9 and restart from the same data dir,
// SIGSTOP/SIGCONT pauses and restarts with the clock offset by ±1.5 s.
// After each fault it heals and measures how long the agents take to hold
// identical state; at the end it checks the history (package chaos) and
// prints what it found. It exits 1 if any check fails.
//
// It needs root (network namespaces). `make chaos` runs it; see README.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/chaos"
	"github.com/rumor-dev/rumor/rpc"
)

// The agents' config: defaults, except
//   - faster redials and anti-entropy, so that a healed link is back within
//     the 2 s convergence bound, not after a 5 s backoff;
//   - short leases, so that leases change hands often;
//   - max_skew 3.5 s: the run's clocks span 3 s (offsets of ±1.5 s). With
//     the default 2 s, the slowest agent refuses the fastest one's fresh
//     writes until they are a second old (anti-entropy then delivers them;
//     daemon tests cover that path). A lease that the fast agent renews
//     every second would then always be a second behind on the slow one,
//     and the run could never observe identical state.
const agentConfig = `cluster: chaos
max_skew: 3500ms
redial_min: 100ms
redial_max: 1s
anti_entropy_interval: 2s
lease_ttl: 3s
metrics_addr: ""
log_level: info
`

// finalBound is how soon after the final heal every agent must hold the
// same state.
const finalBound = 2 * time.Second

func main() {
	os.Exit(mainErr())
}

type options struct {
	cycles          int
	seed            uint64
	agents          int
	far             int
	faultMin        time.Duration
	faultMax        time.Duration
	calm            time.Duration
	convergeTimeout time.Duration
	rumorBin        string
	netlab          string
	dir             string
	jsonPath        string
	keep            bool
	faults          []string
	tcpOnly         bool
}

func mainErr() int {
	var o options
	flag.IntVar(&o.cycles, "cycles", 12, "fault cycles (each: inject, hold, heal, measure convergence)")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the fault order and the workload (0: from the time; printed)")
	flag.IntVar(&o.agents, "agents", 5, "agents, each in its own namespace")
	flag.IntVar(&o.far, "far", 2, "how many of them (the last ones) are in the far region")
	flag.DurationVar(&o.faultMin, "fault-min", 2*time.Second, "shortest time a fault is held")
	flag.DurationVar(&o.faultMax, "fault-max", 6*time.Second, "longest time a fault is held")
	flag.DurationVar(&o.calm, "calm", time.Second, "fault-free workload time between cycles")
	flag.DurationVar(&o.convergeTimeout, "converge-timeout", 30*time.Second, "how long to wait for identical state after a heal before calling it a failure")
	flag.StringVar(&o.rumorBin, "rumor", "bin/rumor", "the rumor binary")
	flag.StringVar(&o.netlab, "netlab", "../shared/netlab/netlab", "the netlab script")
	flag.StringVar(&o.dir, "dir", "", "directory for data dirs and logs (default: a new temp dir)")
	flag.StringVar(&o.jsonPath, "json", "", "write the full report (cycles, windows, violations, history) as JSON here")
	flag.BoolVar(&o.keep, "keep", false, "keep the data dirs and logs (always kept when a check fails)")
	flag.BoolVar(&o.tcpOnly, "tcp-only", false, "agents listen on TCP only (default: TCP and QUIC, as the default config)")
	faults := flag.String("faults", strings.Join(faultKinds, ","), "comma-separated fault kinds to draw from")
	flag.Parse()
	for _, f := range strings.Split(*faults, ",") {
		if !slices.Contains(faultKinds, f) {
			fmt.Fprintf(os.Stderr, "rumor-chaos: -faults: unknown fault %q (known: %s)\n", f, strings.Join(faultKinds, ", "))
			return 2
		}
		o.faults = append(o.faults, f)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	if o.agents < 3 || o.far >= o.agents || o.faultMin <= 0 || o.faultMax < o.faultMin || o.cycles < 0 {
		fmt.Fprintln(os.Stderr, "rumor-chaos: need -agents >= 3, -far < -agents, 0 < -fault-min <= -fault-max, -cycles >= 0")
		return 2
	}
	for _, p := range []*string{&o.rumorBin, &o.netlab} {
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p = abs
		}
		if _, err := os.Stat(*p); err != nil {
			fmt.Fprintf(os.Stderr, "rumor-chaos: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := run(ctx, o)
	if rep != nil {
		rep.print(os.Stdout)
		if o.jsonPath != "" {
			if b, jerr := json.MarshalIndent(rep, "", "  "); jerr == nil {
				_ = os.WriteFile(o.jsonPath, b, 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rumor-chaos: %v\n", err)
		return 1
	}
	if len(rep.Violations) > 0 {
		return 1
	}
	return 0
}

// runner holds the lab and its agents.
type runner struct {
	lab      *lab
	agents   []*agent
	rumorBin string
	config   string
	far      []int // netlab node numbers in the far region
}

// heal removes every partition, leaving the far region's delay in place.
func (r *runner) heal() error { return r.lab.unpartition() }

// setup clears partitions and delays, then makes the far region far.
func (r *runner) setup() error {
	if err := r.lab.heal(); err != nil {
		return err
	}
	for _, i := range r.far {
		if err := r.lab.delay(i, 100, 20, 1); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, o options) (rep *report, err error) {
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "rumor-chaos-"); err != nil {
			return nil, err
		}
	}
	l := &lab{bin: o.netlab, net: "10.99.0"}
	_ = l.down() // leftovers of an interrupted run
	if err := l.up(o.agents); err != nil {
		return nil, err
	}
	r := &runner{lab: l, rumorBin: o.rumorBin, config: filepath.Join(dir, "agent.yaml")}
	defer func() {
		if derr := l.down(); derr != nil && err == nil {
			err = derr
		}
		if rep != nil && len(rep.Violations) == 0 && err == nil && !o.keep {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(os.Stderr, "rumor-chaos: data dirs and agent logs kept in %s\n", dir)
		}
	}()
	if err := os.WriteFile(r.config, []byte(agentConfig), 0o644); err != nil {
		return nil, err
	}
	for i := 1; i <= o.agents; i++ {
		region := "near"
		if i > o.agents-o.far {
			region = "far"
			r.far = append(r.far, i)
		}
		a, err := newAgent(dir, l, i, region, o.tcpOnly)
		if err != nil {
			return nil, err
		}
		r.agents = append(r.agents, a)
	}
	if err := r.setup(); err != nil {
		return nil, err
	}
	started := time.Now()
	for _, a := range r.agents {
		if err := a.start(l, r.rumorBin, r.config, r.agents); err != nil {
			return nil, err
		}
	}
	w := &workload{agents: r.agents, period: 250 * time.Millisecond, rumorBin: r.rumorBin}
	for _, a := range r.agents {
		w.ids = append(w.ids, a.id)
	}
	rep = &report{Seed: o.seed, Agents: o.agents, Far: r.far, Cycles: []cycle{}}
	// Wait until every agent sees every other before the first fault.
	if _, err := r.converge(ctx, w, time.Now(), o.convergeTimeout, true); err != nil {
		return rep, fmt.Errorf("cluster did not form: %w", err)
	}

	wctx, stopWorkload := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(wctx, o.seed) }()
	defer func() { stopWorkload(); wg.Wait() }()

	rng := rand.New(rand.NewPCG(o.seed, 0xc4a05))
	for c := 0; c < o.cycles && ctx.Err() == nil; c++ {
		kind := o.faults[rng.IntN(len(o.faults))]
		hold := o.faultMin + time.Duration(rng.Int64N(int64(o.faultMax-o.faultMin)+1))
		cy := cycle{N: c + 1, Fault: kind, Start: time.Now(), Hold: hold}
		f, err := r.inject(kind, rng)
		cy.Detail = f.detail
		if err != nil {
			return rep, fmt.Errorf("cycle %d: %s: %w", c+1, kind, err)
		}
		fmt.Printf("cycle %3d  %-16s %-44s hold %5.1fs", c+1, kind, f.detail, hold.Seconds())
		if !pause(ctx, hold) {
			break
		}
		resume := w.quiesce()
		if f.undo != nil {
			if err := f.undo(); err != nil {
				resume()
				return rep, fmt.Errorf("cycle %d: undo %s: %w", c+1, kind, err)
			}
		}
		// Were the agents apart when the fault ended? (A heal that finds
		// them identical measures nothing.)
		if states, err := r.states(ctx, ""); err == nil {
			cy.Apart = chaos.Diff(states, func(k string) bool { return strings.HasPrefix(k, "node/") }) != ""
		} else {
			cy.Apart = true // some agent could not answer: a paused one, say
		}
		// Convergence counts from the start of the heal: netlab takes a
		// while to clear the cuts and restore the far region's delay, and
		// traffic flows meanwhile.
		healed := time.Now()
		if err := r.heal(); err != nil {
			resume()
			return rep, err
		}
		conv, err := r.converge(ctx, w, healed, o.convergeTimeout, false)
		resume()
		cy.Converged = conv
		if err != nil {
			cy.Err = err.Error()
			rep.Violations = append(rep.Violations, chaos.Violation{Check: chaos.CheckDiverged, Detail: fmt.Sprintf("cycle %d (%s): %v", c+1, kind, err)})
		}
		apart := "identical at heal"
		if cy.Apart {
			apart = "apart at heal"
		}
		cy.Calm = time.Now()
		fmt.Printf("  %-17s converged in %v\n", apart, conv.Round(time.Millisecond))
		rep.Cycles = append(rep.Cycles, cy)
		if !pause(ctx, o.calm) {
			break
		}
	}

	// The final heal: every agent running, no faults, workload stopped.
	stopWorkload()
	wg.Wait()
	for _, a := range r.agents {
		if !a.up() {
			return rep, fmt.Errorf("agent %d is not running at the end", a.i)
		}
	}
	healed := time.Now()
	if err := r.heal(); err != nil {
		return rep, err
	}
	rep.Final, err = r.converge(context.Background(), w, healed, o.convergeTimeout, false)
	if err != nil {
		rep.Violations = append(rep.Violations, chaos.Violation{Check: chaos.CheckDiverged, Detail: "after the final heal: " + err.Error()})
	} else if rep.Final > finalBound {
		rep.Violations = append(rep.Violations, chaos.Violation{Check: chaos.CheckDiverged, Detail: fmt.Sprintf("after the final heal the agents took %v to converge (bound %v)", rep.Final, finalBound)})
	}
	r.check(rep, w)
	// The queue: drained by every agent's worker, with no fault.
	ended := r.drainQueue(ctx, w, o.seed)
	var faults []chaos.Interval
	for _, c := range rep.Cycles {
		faults = append(faults, chaos.Interval{From: c.Start, To: c.Calm})
	}
	w.queue.mu.Lock()
	q, vs := chaos.Queue(w.queue.submitted, ended, w.queue.takes, faults)
	q.Unknown = w.queue.unknown
	w.queue.mu.Unlock()
	rep.Queue, rep.Violations = q, append(rep.Violations, vs...)
	w.mu.Lock()
	rep.Watches, rep.WatchReconnects = w.watches, w.reconnects
	for n := range w.watches {
		rep.Violations = append(rep.Violations, w.watches[n].Violations(fmt.Sprintf("agent %d's watch", n))...)
	}
	w.mu.Unlock()
	rep.Duration = time.Since(started)
	return rep, nil
}

// converge polls every agent's records until all hold the same (node/
// heartbeats aside, which change every second), and reports how long after
// since that took. With members, it also waits until every agent lists
// every other as alive.
func (r *runner) converge(ctx context.Context, w *workload, since time.Time, timeout time.Duration, members bool) (time.Duration, error) {
	deadline := since.Add(timeout)
	skip := func(k string) bool { return strings.HasPrefix(k, "node/") }
	var last string
	for {
		states, err := r.states(ctx, "")
		if err == nil {
			last = chaos.Diff(states, skip)
			if last == "" && members {
				last = r.membersAlive(ctx)
			}
			if last == "" {
				return time.Since(since), nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return time.Since(since), fmt.Errorf("not identical after %v: %s", timeout, last)
		}
		if !pause(ctx, 20*time.Millisecond) {
			return time.Since(since), ctx.Err()
		}
	}
}

// states fetches every agent's records under prefix, concurrently.
func (r *runner) states(ctx context.Context, prefix string) ([][]rpc.Record, error) {
	out := make([][]rpc.Record, len(r.agents))
	errs := make([]error, len(r.agents))
	var wg sync.WaitGroup
	for n, a := range r.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			out[n], errs[n] = a.client.Records(cctx, prefix)
			if errs[n] != nil {
				errs[n] = fmt.Errorf("agent %d: %w", n, errs[n])
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (r *runner) membersAlive(ctx context.Context) string {
	for n, a := range r.agents {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ms, err := a.client.Members(cctx)
		cancel()
		if err != nil {
			return fmt.Sprintf("agent %d: %v", n, err)
		}
		alive := 0
		for _, m := range ms {
			if m.State == "alive" {
				alive++
			}
		}
		if alive < len(r.agents) {
			return fmt.Sprintf("agent %d sees %d of %d members alive", n, alive, len(r.agents))
		}
	}
	return ""
}

// check runs every check over the history and the final states.
func (r *runner) check(rep *report, w *workload) {
	ctx := context.Background()
	states, err := r.states(ctx, "")
	if err != nil {
		rep.Violations = append(rep.Violations, chaos.Violation{Check: "final-state", Detail: err.Error()})
		return
	}
	final := states[0]
	nodes := map[string]int{}
	for n, a := range r.agents {
		nodes[a.id] = n
	}
	var views []chaos.View
	for n, a := range r.agents {
		before := time.Now()
		ks, err := a.client.KernelList(ctx)
		if err != nil {
			rep.Violations = append(rep.Violations, chaos.Violation{Check: "final-state", Detail: fmt.Sprintf("agent %d: %v", n, err)})
			return
		}
		took := time.Since(before)
		views = append(views, chaos.View{Now: before.Add(took / 2).Add(a.offset), Slack: took/2 + 50*time.Millisecond, Kernels: ks})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rep.Violations = append(rep.Violations, chaos.Lost(w.ops, final)...)
	rep.Violations = append(rep.Violations, chaos.Phantoms(w.ops, final, nodes)...)
	rep.Violations = append(rep.Violations, chaos.EpochRegressions(w.samples)...)
	rep.Violations = append(rep.Violations, chaos.HoldersAgree(views)...)
	for _, m := range w.missing {
		rep.Violations = append(rep.Violations, chaos.Violation{Check: chaos.CheckLost, Detail: m})
	}
	rep.Windows = chaos.DoubleGrants(w.samples, w.ids, w.period)
	rep.Ops = map[string]int{}
	for _, op := range w.ops {
		rep.Ops[string(op.Outcome)]++
		if op.Outcome == chaos.OK && op.Acked != nil {
			rep.Ops["checked"]++
			if op.Acked.Op == "delete" {
				rep.Ops["checked deletes"]++
			}
		}
		if op.Kind == "kernel-claim" && op.Granted {
			rep.Ops["grants"]++
		}
	}
	rep.Ops["unread"] = w.unread
	rep.Ops["superseded"] = w.superseded
	rep.Samples = len(w.samples)
	rep.Locks = w.locks
	rep.LockOverlaps = lockOverlaps(rep.Locks)
	rep.LockOvertaken = lockOvertakes(rep.Locks)
	for _, k := range views[0].Kernels {
		rep.Holders = append(rep.Holders, fmt.Sprintf("%s: holder %s epoch %d live %v", k.ID, chaos.ShortID(k.Holder), k.Epoch, k.Live))
	}
	for _, a := range r.agents {
		rep.Crashes += a.crashes
	}
}

// cycle is one fault and its aftermath.
type cycle struct {
	N         int           `json:"n"`
	Fault     string        `json:"fault"`
	Detail    string        `json:"detail"`
	Start     time.Time     `json:"start"`
	Hold      time.Duration `json:"hold_ns"`
	Converged time.Duration `json:"converged_ns"`
	// Calm is when the agents had converged after the heal: the fault
	// was in force from Start until then.
	Calm time.Time `json:"calm"`
	// Apart is whether the agents' states differed when the fault ended.
	Apart bool   `json:"apart"`
	Err   string `json:"err,omitempty"`
}

// report is what the run saw.
type report struct {
	Seed     uint64         `json:"seed"`
	Agents   int            `json:"agents"`
	Far      []int          `json:"far"`
	Duration time.Duration  `json:"duration_ns"`
	Cycles   []cycle        `json:"cycles"`
	Final    time.Duration  `json:"final_convergence_ns"`
	Ops      map[string]int `json:"ops"`
	Samples  int            `json:"samples"`
	Crashes  int            `json:"crashes"`
	Windows  []chaos.Window `json:"double_grant_windows"`
	// Locks are the commands rumor lock ran; LockOverlaps the windows in
	// which two of them, on two hosts, ran at once.
	Locks        []lockRun       `json:"lock_runs"`
	LockOverlaps []time.Duration `json:"lock_overlaps_ns"`
	// LockOvertaken is the most rumor lock runs that began to wait after
	// one run and were granted before it.
	LockOvertaken int      `json:"lock_overtaken"`
	Holders       []string `json:"holders"`
	// Queue is what the work queue's submitter and workers saw.
	Queue chaos.QueueFindings `json:"queue"`
	// Watches are the watch workload's streams, one per agent, and
	// WatchReconnects the times their clients resumed them with since.
	Watches         []chaos.WatchStream `json:"watches"`
	WatchReconnects int                 `json:"watch_reconnects"`
	Violations      []chaos.Violation   `json:"violations"`
}

func (rep *report) print(out *os.File) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("")
	p("rumor chaos: %d agents (far region: nodes %v, +100±20 ms, 1%% loss), %d cycles in %v, seed %d",
		rep.Agents, rep.Far, len(rep.Cycles), rep.Duration.Round(time.Second), rep.Seed)
	faults := map[string]int{}
	var conv []time.Duration
	apart := 0
	for _, c := range rep.Cycles {
		faults[c.Fault]++
		if c.Err == "" && c.Apart {
			conv = append(conv, c.Converged)
		}
		if c.Apart {
			apart++
		}
	}
	var fs []string
	for _, k := range slices.Sorted(maps.Keys(faults)) {
		fs = append(fs, fmt.Sprintf("%s %d", k, faults[k]))
	}
	p("  faults:                       %s", strings.Join(fs, ", "))
	p("  operations:                   %d ok (%d checked, %d of them deletes), %d failed, %d unknown; %d kernel grants",
		rep.Ops["ok"], rep.Ops["checked"], rep.Ops["checked deletes"], rep.Ops["failed"], rep.Ops["unknown"], rep.Ops["grants"])
	p("  apart when the fault ended:   %d of %d cycles", apart, len(rep.Cycles))
	p("  convergence after those heals: p50 / p99 / max %s", benchstat.Summarize(conv))
	p("  convergence after final heal: %v (bound %v)", rep.Final.Round(time.Millisecond), finalBound)
	var wd []time.Duration
	for _, w := range rep.Windows {
		wd = append(wd, w.Duration)
	}
	p("  double-grant windows:         %d; p50 / p99 / max %s (sampled every 250 ms)", len(rep.Windows), benchstat.Summarize(wd))
	stopped := 0
	for _, l := range rep.Locks {
		if l.Stopped {
			stopped++
		}
	}
	p("  rumor lock:                   %d commands run, %d stopped by rumor lock (lease lost, suspect or unconfirmed); at most %d overtaken by a later waiter", len(rep.Locks), stopped, rep.LockOvertaken)
	p("  rumor lock double executions: %d; p50 / p99 / max %s%s", len(rep.LockOverlaps), benchstat.Summarize(rep.LockOverlaps), rep.overlapFaults())
	p("  kernel holders at the end:    %s", strings.Join(rep.Holders, "; "))
	q := rep.Queue
	p("  work queue:                   %d tasks submitted (%d more unknown), %d done, %d failed, %d lost; %d takes", q.Submitted, q.Unknown, q.Done, q.Failed, q.Lost, q.Takes)
	var lines, changes, resyncs, missed, repeated int
	for _, ws := range rep.Watches {
		lines, changes, resyncs, missed, repeated = lines+ws.Lines, changes+ws.Changes, resyncs+ws.Resyncs, missed+ws.Missed, repeated+ws.Repeated
	}
	p("  watches (every key, resumed with --since every 1-4 s): %d lines, %d changes, %d reconnects, %d resyncs; %d changes missed, %d repeated",
		lines, changes, rep.WatchReconnects, resyncs, missed, repeated)
	p("  work queue retakes:           %d after an attempt ended without done, %v after the earlier take; taken twice %d, %d of them with no fault in force",
		q.Retaken, benchstat.Summarize(q.RetakeAfter), q.Twice, q.TwiceCalm)
	byCheck := map[string]int{}
	for _, v := range rep.Violations {
		byCheck[v.Check]++
	}
	for _, c := range []string{chaos.CheckDiverged, chaos.CheckLost, chaos.CheckResurrected, chaos.CheckPhantom, chaos.CheckEpoch, chaos.CheckHolders, chaos.CheckQueueLost, chaos.CheckQueueTwice, chaos.CheckWatchMissed} {
		p("  %-29s %d", c+":", byCheck[c])
	}
	for i, v := range rep.Violations {
		if i == 20 {
			p("  ... %d more in the JSON report", len(rep.Violations)-20)
			break
		}
		p("  VIOLATION %s", v)
	}
	if len(rep.Violations) == 0 {
		p("PASS")
	} else {
		p("FAIL: %d violations", len(rep.Violations))
	}
}

// overlapFaults names the faults during which rumor lock's commands ran at
// once (the cycle in whose hold or heal the later one started).
func (rep *report) overlapFaults() string {
	byFault := map[string]int{}
	for _, l := range rep.Locks {
		if l.Overlapped == 0 {
			continue
		}
		fault := "calm"
		for _, c := range rep.Cycles {
			if !l.Start.Before(c.Start) && l.Start.Before(c.Start.Add(c.Hold+c.Converged+time.Second)) {
				fault = c.Fault
			}
		}
		byFault[fault]++
	}
	if len(byFault) == 0 {
		return ""
	}
	var fs []string
	for _, k := range slices.Sorted(maps.Keys(byFault)) {
		fs = append(fs, fmt.Sprintf("%s %d", k, byFault[k]))
	}
	return "; commands overlapped during: " + strings.Join(fs, ", ")
}
