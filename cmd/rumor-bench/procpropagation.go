package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/rpc"
)

// procDelivery says, in the report, what the process figure's latency
// includes.
const procDelivery = "rumor agent processes on 127.0.0.1; svc set through the writer's rpc.Client (unix socket), " +
	"each apply timed when the bench reads it from that agent's watch stream (NDJSON over its unix socket): " +
	"latency includes the write RPC and the watch stream's delivery"

// procParams are the process propagation figure's knobs.
type procParams struct {
	sizes   []int
	updates int
}

// runProcPropagation starts n agent processes, opens a watch on svc/bench/
// on every one, and writes p.proc.updates svc entries from a rotating
// writer through its rpc.Client, one every spacing (jittered), without
// waiting for one to arrive before the next; each is timed from just
// before the write call until the bench received the apply event from the
// last of the other agents, on this process's monotonic clock. A write
// some agent has not reported p.drain after the last write is lost.
func runProcPropagation(ctx context.Context, n int, opt procOptions, p params) (res PropagationResult, err error) {
	updates := p.proc.updates
	res = PropagationResult{Agents: n, Updates: updates, PayloadBytes: p.payload, Processes: true, Delivery: procDelivery,
		SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)}}
	if n < 2 {
		return res, fmt.Errorf("propagation needs at least 2 agents, got %d", n)
	}
	c, err := startProcCluster(ctx, n, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.FormMs, res.MinPeers = benchstat.Ms(c.formed), c.minPeers

	const prefix = "svc/bench/"
	tr, warm := newTracker(), newTracker()
	ws := watchProcs(ctx, c.agents, prefix, func(i int, ev rpc.Event, at time.Time) {
		tr.seen(ev.Key, i, at)
		warm.seen(ev.Key, i, at)
	})
	defer func() {
		if werr := ws.stop(); werr != nil && err == nil {
			err = werr
		}
	}()
	// Every stream is open on its agent before anything is written.
	if err := pollUntil(ctx, time.Now().Add(30*time.Second), 20*time.Millisecond, func() error {
		if err := ws.failed(); err != nil {
			return err
		}
		for _, a := range c.agents {
			st, err := a.client.Status(ctx)
			if err != nil {
				return err
			}
			if st.Watchers < 1 {
				return fmt.Errorf("agent %d has no watch stream open yet", a.i)
			}
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("watch streams: %w", err)
	}

	// Warm-up, not timed: every agent publishes on the svc topic once, so
	// the figure is the steady state rather than first-publish costs; it
	// also shows every stream delivers.
	req := servicePayload(p.payload)
	for w, a := range c.agents {
		inst := fmt.Sprintf("warmup%03d", w)
		warm.begin(prefix+inst, w, n)
		if _, err := a.client.ServiceSet(ctx, "bench", inst, req); err != nil {
			return res, fmt.Errorf("warm-up svc set on agent %d: %w", w, err)
		}
	}
	if err := pollUntil(ctx, time.Now().Add(p.drain), 5*time.Millisecond, func() error {
		if err := ws.failed(); err != nil {
			return err
		}
		if k := warm.outstanding(); k > 0 {
			return fmt.Errorf("%d of %d warm-up writes did not reach every agent within %v: %s", k, n, p.drain, warm.laggards())
		}
		return nil
	}); err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
		return res, err
	}

	rng := rand.New(rand.NewPCG(p.cluster.seed, uint64(n)))
	meter, agents0 := startCPUMeter(), c.agentsCPU()
	written := 0
	// finish fills in the figures from what arrived, whatever ended the run.
	finish := func() {
		res.Updates = written
		res.Lost = tr.outstanding()
		res.CPUCores, res.AgentCores, res.OtherCores = meter.coresWith(c.agentsCPU() - agents0)
		res.Latency = benchstat.Summarize(tr.latencies())
		res.SamplesMs = nil
		for i := range written {
			ms := -1.0
			if d, ok := tr.latency(prefix + instanceName(i)); ok {
				ms = math.Round(benchstat.Ms(d)*1000) / 1000
			}
			res.SamplesMs = append(res.SamplesMs, ms)
		}
	}
	var runErr error
	for i := range updates {
		w := i % n
		inst := instanceName(i)
		tr.begin(prefix+inst, w, n)
		written++ // a failed write stays pending and counts as lost
		if _, err := c.agents[w].client.ServiceSet(ctx, "bench", inst, req); err != nil {
			runErr = fmt.Errorf("svc set on agent %d: %w", w, err)
			break
		}
		if runErr = ws.failed(); runErr != nil {
			break
		}
		gap := p.spacingMin
		if p.spacingMax > p.spacingMin {
			gap += time.Duration(rng.Int64N(int64(p.spacingMax - p.spacingMin)))
		}
		if runErr = sleepCtx(ctx, gap); runErr != nil {
			break
		}
	}
	if written < updates && runErr == nil {
		runErr = errors.New("not every write was made")
	}
	// Drain: a write still missing somewhere after p.drain is lost.
	if ctx.Err() == nil {
		deadline := time.Now().Add(p.drain)
		for tr.outstanding() > 0 && time.Now().Before(deadline) && ws.failed() == nil {
			if sleepCtx(ctx, 5*time.Millisecond) != nil {
				break
			}
		}
	}
	finish()
	if runErr == nil {
		runErr = ws.failed()
	}
	return res, runErr
}
