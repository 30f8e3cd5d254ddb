package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// PropagationResult is figure 1 for one cluster size.
type PropagationResult struct {
	Agents       int     `json:"agents"`
	Updates      int     `json:"updates"`
	Lost         int     `json:"lost"`
	PayloadBytes int     `json:"payload_bytes"`
	FormMs       float64 `json:"form_ms"`
	MinPeers     int     `json:"min_peers"`
	SpacingMs    [2]int  `json:"spacing_ms"`
	// Latency is from just before ServiceSet on the writer until the last
	// of the other agents applied the write.
	Latency Summary `json:"latency"`
}

// servicePayload returns svc set arguments whose encoded value is about
// size bytes.
func servicePayload(size int) rpc.ServiceSet {
	req := rpc.ServiceSet{Addr: "10.1.2.3:8080", Status: "up", Tags: map[string]string{"zone": "eu-west-1a", "meta": ""}}
	pad := size - len(crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags}))
	req.Tags["meta"] = strings.Repeat("m", max(pad, 0))
	return req
}

// runPropagation starts n agents and writes updates svc entries from a
// rotating writer, one every spacing (jittered), without waiting for one to
// arrive before the next; it times each to the last other agent.
func runPropagation(ctx context.Context, n int, p params) (PropagationResult, error) {
	res := PropagationResult{Agents: n, Updates: p.updates, PayloadBytes: p.payload,
		SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)}}
	if n < 2 {
		return res, fmt.Errorf("propagation needs at least 2 agents, got %d", n)
	}
	c, err := startCluster(ctx, n, p.cluster)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.FormMs, res.MinPeers = ms(c.formed), c.minPeers

	const prefix = "svc/bench/"
	tr := newTracker()
	var dr drainers
	for i, a := range c.agents {
		dr.watch(a.Store(), prefix, 1<<14, func(ev storeEvent, at time.Time) { tr.seen(ev.Delta.Key, i, at) })
	}
	defer dr.stop()

	req := servicePayload(p.payload)
	rng := rand.New(rand.NewPCG(p.cluster.seed, uint64(n)))
	for i := range p.updates {
		w := i % n
		inst := fmt.Sprintf("i%06d", i)
		tr.begin(prefix+inst, w, n)
		if _, err := c.agents[w].ServiceSet(ctx, "bench", inst, req); err != nil {
			return res, fmt.Errorf("svc set on agent %d: %w", w, err)
		}
		gap := p.spacingMin
		if p.spacingMax > p.spacingMin {
			gap += time.Duration(rng.Int64N(int64(p.spacingMax - p.spacingMin)))
		}
		if err := sleepCtx(ctx, gap); err != nil {
			return res, err
		}
		if err := dr.failed(); err != nil {
			return res, err
		}
	}
	deadline := time.Now().Add(p.drain)
	for tr.outstanding() > 0 && time.Now().Before(deadline) {
		if err := dr.failed(); err != nil {
			return res, err
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.Lost = tr.outstanding()
	res.Latency = Summarize(tr.latencies())
	if err := dr.stop(); err != nil {
		return res, err
	}
	return res, nil
}
