package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// laneParams are figure 10's knobs.
type laneParams struct {
	agents int
	adds   int           // bl adds timed in each phase
	gap    time.Duration // pause after one add arrived everywhere, before the next
	// window bounds the flooder's lead on its publisher: it writes in a
	// loop as fast as it can, pausing only while window of its svc writes
	// are unpublished, so the publisher is never idle during the flood
	// and its backlog's memory stays bounded.
	window int
	// keys is how many svc instances the flood cycles through.
	keys   int
	within time.Duration // how long one add may take before it counts as lost
	ramp   time.Duration // flooding before the first timed add
	target float64       // the most flood p99 / idle p99 may be
}

// LaneResult is figure 10: the priority lane. bl add propagation from one
// agent to all the others, idle and while that agent floods svc writes as
// fast as it can (at most window of them unpublished).
type LaneResult struct {
	Agents   int       `json:"agents"`
	Adds     int       `json:"adds"`
	Window   int       `json:"window"`
	GapMs    float64   `json:"gap_ms"`
	MinPeers int       `json:"min_peers"`
	Idle     LanePhase `json:"idle"`
	Flood    LanePhase `json:"flood"`
	// SvcWritten is the svc writes the flooder made while the flood
	// phase ran; SvcPerSec divides them by its duration. SvcPublished is
	// what its publisher sent meanwhile, and SvcAppliedPerSec what the
	// slowest receiver applied per second of it.
	SvcWritten       int64   `json:"svc_written"`
	SvcPublished     int64   `json:"svc_published"`
	FloodSeconds     float64 `json:"flood_seconds"`
	SvcPerSec        float64 `json:"svc_per_sec"`
	SvcAppliedPerSec float64 `json:"svc_applied_per_sec"`
	// Ratio is Flood's p99 over Idle's; Target is the most it may be.
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
}

// LanePhase is one phase of figure 10.
type LanePhase struct {
	// Latency is from just before BlacklistAdd on the writer until the
	// last other agent applied the entry; one add at a time.
	Latency    benchstat.Summary `json:"latency"`
	Lost       int               `json:"lost"`
	CPUCores   float64           `json:"cpu_cores"`
	OtherCores float64           `json:"other_cores"`
}

// runLaneFigure runs figure 10 if selected.
func runLaneFigure(ctx context.Context, out io.Writer, p params, rep *Report, fail func(string, error)) {
	if !p.phases[10] || ctx.Err() != nil {
		return
	}
	lp := p.lane
	fmt.Fprintf(out, "[10] priority lane: %d agents, %d bl adds idle, then %d while the writer floods svc writes...\n", lp.agents, lp.adds, lp.adds)
	r, err := runLane(ctx, lp, p)
	if err == nil && (r.Idle.Lost > 0 || r.Flood.Lost > 0) {
		err = fmt.Errorf("%d idle and %d flood bl adds did not reach every agent within %v", r.Idle.Lost, r.Flood.Lost, lp.within)
	}
	if err != nil {
		fail("priority lane", err)
	}
	if r.Idle.Latency.N > 0 || err == nil {
		rep.Lane = &r
	}
}

// runLane starts lp.agents agents; agent 0 adds blacklist entries one at a
// time, each timed until every other agent applied it, first with the
// cluster idle and then while a goroutine on agent 0 floods svc writes.
func runLane(ctx context.Context, lp laneParams, p params) (LaneResult, error) {
	res := LaneResult{Agents: lp.agents, Adds: lp.adds, Window: lp.window, GapMs: benchstat.Ms(lp.gap), Target: lp.target}
	if lp.agents < 2 || lp.adds < 1 {
		return res, fmt.Errorf("the lane figure needs at least 2 agents and 1 add, got %d and %d", lp.agents, lp.adds)
	}
	// The warm-up add below waits until the writer reaches every agent:
	// the meshes need no longer settle.
	opt := p.cluster
	opt.settle = min(opt.settle, 500*time.Millisecond)
	c, err := startCluster(ctx, lp.agents, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.MinPeers = c.minPeers
	writer := c.agents[0]

	const blPrefix = "bl/lane/"
	tr := newTracker()
	var dr drainers
	for i, a := range c.agents {
		dr.watch(a.Store(), blPrefix, 1<<10, func(ev storeEvent, at time.Time) { tr.seen(ev.Delta.Key, i, at) })
	}
	defer dr.stop()

	reason := blacklistReason(p.payload)
	svc := servicePayload(p.payload)
	var seq int
	// add times one bl add from the writer until every other agent has it
	// or lp.within passed; it returns whether it arrived.
	add := func() (bool, error) {
		id := fmt.Sprintf("a%05d", seq)
		seq++
		key := blPrefix + id
		tr.begin(key, 0, lp.agents)
		if _, err := writer.BlacklistAdd(ctx, "lane", id, rpc.BlacklistAdd{Reason: reason}); err != nil {
			return false, fmt.Errorf("bl add: %w", err)
		}
		deadline := time.Now().Add(lp.within)
		for {
			if _, ok := tr.latency(key); ok {
				return true, nil
			}
			if err := dr.failed(); err != nil {
				return false, err
			}
			if time.Now().After(deadline) {
				return false, nil
			}
			if err := sleepCtx(ctx, 200*time.Microsecond); err != nil {
				return false, err
			}
		}
	}
	rng := rand.New(rand.NewPCG(p.cluster.seed, 9))
	phase := func(ph *LanePhase) error {
		before := len(tr.latencies())
		meter := startCPUMeter()
		for range lp.adds {
			ok, err := add()
			if err != nil {
				return err
			}
			if !ok {
				ph.Lost++
			}
			// Jittered, so that adds do not lock step with the flusher
			// or the failure detector's probe rounds.
			if err := sleepCtx(ctx, lp.gap/2+time.Duration(rng.Int64N(int64(lp.gap)+1))); err != nil {
				return err
			}
		}
		ph.CPUCores, ph.OtherCores = meter.cores()
		ph.Latency = benchstat.Summarize(tr.latencies()[before:])
		return nil
	}

	// Warm-up, not timed: the writer publishes on both topics once.
	if _, err := writer.ServiceSet(ctx, "lane", "warmup", svc); err != nil {
		return res, fmt.Errorf("warm-up svc set: %w", err)
	}
	if ok, err := add(); err != nil || !ok {
		return res, fmt.Errorf("warm-up bl add did not reach every agent within %v (%v)", lp.within, err)
	}

	if err := phase(&res.Idle); err != nil {
		return res, fmt.Errorf("idle: %w", err)
	}

	// The flood: svc writes from agent 0 in a loop, at most lp.window of
	// them unpublished.
	svcIdx := slices.Index(crdt.Namespaces, crdt.NSService)
	published := func() int64 {
		d, _, _ := writer.Replica().Published()
		return int64(d[svcIdx])
	}
	appliedSlowest := func() int64 {
		least := int64(-1)
		for _, a := range c.agents[1:] {
			if n := int64(a.Replica().AppliedIn()[svcIdx]); least < 0 || n < least {
				least = n
			}
		}
		return least
	}
	var (
		written  atomic.Int64
		floodErr atomic.Pointer[error]
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	pub0, applied0 := published(), appliedSlowest()
	floodStart := time.Now()
	wg.Go(func() { flood(ctx, writer, svc, lp, pub0, published, &written, &floodErr, stop) })
	err = sleepCtx(ctx, lp.ramp)
	if err == nil {
		err = phase(&res.Flood)
	}
	close(stop)
	wg.Wait()
	res.FloodSeconds = time.Since(floodStart).Seconds()
	res.SvcWritten = written.Load()
	res.SvcPublished = published() - pub0
	if res.FloodSeconds > 0 {
		res.SvcPerSec = float64(res.SvcWritten) / res.FloodSeconds
		res.SvcAppliedPerSec = float64(appliedSlowest()-applied0) / res.FloodSeconds
	}
	if err != nil {
		return res, fmt.Errorf("flood: %w", err)
	}
	if e := floodErr.Load(); e != nil {
		return res, fmt.Errorf("svc flood: %w", *e)
	}
	if idle := res.Idle.Latency.P99Ms; idle > 0 {
		res.Ratio = res.Flood.Latency.P99Ms / idle
		res.Met = res.Ratio <= lp.target && res.Flood.Lost == 0
	}
	return res, dr.stop()
}

// flood writes svc entries on a until stop closes, cycling through
// lp.keys instances, while fewer than lp.window of its writes since the
// flood began (published() started at pub0) are unpublished.
func flood(ctx context.Context, a *agent.Agent, req rpc.ServiceSet, lp laneParams, pub0 int64, published func() int64,
	written *atomic.Int64, failed *atomic.Pointer[error], stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		if written.Load()-(published()-pub0) >= int64(lp.window) {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if _, err := a.ServiceSet(ctx, "lane", fmt.Sprintf("f%05d", i%lp.keys), req); err != nil {
			failed.CompareAndSwap(nil, &err)
			return
		}
		written.Add(1)
	}
}

// printLane prints figure 10.
func printLane(tw io.Writer, rep Report, p params) {
	r := rep.Lane
	if r == nil {
		if p.phases[10] {
			fmt.Fprintln(tw, "\n10. Priority lane: (not measured)")
		}
		return
	}
	fmt.Fprintf(tw, "\n10. Priority lane: N=%d, bl add (%d B) from agent 0 until applied on every other agent, one at a time (%v-%v apart), %d per phase;\n",
		r.Agents, p.payload, time.Duration(r.GapMs*float64(time.Millisecond))/2, time.Duration(r.GapMs*float64(time.Millisecond))*3/2, r.Adds)
	fmt.Fprintf(tw, "   flood: agent 0 writes svc (%d B) in a loop as fast as it can (pausing while %d are unpublished), cycling over %d instances\n",
		p.payload, r.Window, p.lane.keys)
	fmt.Fprintln(tw, "phase\tp50 ms\tp99 ms\tmax ms\tlost\tCPU bench/others\t")
	for _, ph := range []struct {
		name string
		r    LanePhase
	}{{"idle", r.Idle}, {"svc flood", r.Flood}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.2f / %.2f of %d\t\n", ph.name, benchstat.FmtMs(ph.r.Latency.P50Ms), benchstat.FmtMs(ph.r.Latency.P99Ms),
			benchstat.FmtMs(ph.r.Latency.MaxMs), ph.r.Lost, ph.r.CPUCores, ph.r.OtherCores, rep.Machine.NumCPU)
	}
	fmt.Fprintf(tw, "   svc flood: %d written (%.0f/s), %d published, the slowest receiver applied %.0f/s, over %.1f s\n",
		r.SvcWritten, r.SvcPerSec, r.SvcPublished, r.SvcAppliedPerSec, r.FloodSeconds)
	verdict := "met"
	if !r.Met {
		verdict = "NOT met"
	}
	fmt.Fprintf(tw, "   p99 under the flood / idle: %.2fx (target <= %.0fx: %s)\n", r.Ratio, r.Target, verdict)
}
