package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
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
	// Namespace is what the writes were: svc sets or kv puts.
	Namespace string `json:"namespace,omitempty"`
	// Latency is from just before the write (ServiceSet or KVPut) on the
	// writer until the last of the other agents applied it.
	Latency benchstat.Summary `json:"latency"`
	// CPUCores is the process's CPU time over the timed writes and their
	// drain, divided by their wall time: how many cores were busy.
	CPUCores float64 `json:"cpu_cores"`
	// OtherCores is what other processes on the machine used meanwhile.
	OtherCores float64 `json:"other_cores"`
	// Processes is true when the agents were `rumor agent` processes
	// (Delivery says what the latency then includes), false when they
	// ran in the bench's process.
	Processes bool   `json:"processes,omitempty"`
	Delivery  string `json:"delivery,omitempty"`
	// AgentCores is the agent processes' CPU over the same time, in cores
	// (processes only; in one process it is part of CPUCores).
	AgentCores float64 `json:"agent_cores,omitempty"`
	// SamplesMs lists every write's latency in write order; -1 for one
	// that never reached every agent.
	SamplesMs []float64 `json:"samples_ms"`
}

// servicePayload returns svc set arguments whose encoded value is about
// size bytes.
func servicePayload(size int) rpc.ServiceSet {
	req := rpc.ServiceSet{Addr: "10.1.2.3:8080", Status: "up", Tags: map[string]string{"zone": "eu-west-1a", "meta": ""}}
	pad := size - len(crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags}))
	req.Tags["meta"] = strings.Repeat("m", max(pad, 0))
	return req
}

// instanceName names the i-th write's svc instance (or kv key).
func instanceName(i int) string { return fmt.Sprintf("i%06d", i) }

// propagationWrite returns figure 1's write of namespace ns ("svc" or
// "kv") and the store prefix its keys are under: an svc set of instance
// bench/<name>, or a kv put of /bench/<name>, each of about payload bytes.
func propagationWrite(ns string, payload int) (func(ctx context.Context, a *agent.Agent, name string) error, string) {
	if ns == "kv" {
		v := strings.Repeat("v", max(payload-len(crdt.Encode(crdt.KVValue{Version: 1})), 1))
		return func(ctx context.Context, a *agent.Agent, name string) error {
			_, err := a.KVPut(ctx, "/bench/"+name, rpc.KVPut{Value: v})
			return err
		}, "kv/bench/"
	}
	req := servicePayload(payload)
	return func(ctx context.Context, a *agent.Agent, name string) error {
		_, err := a.ServiceSet(ctx, "bench", name, req)
		return err
	}, "svc/bench/"
}

// runPropagation starts n agents and writes updates svc entries from a
// rotating writer, one every spacing (jittered), without waiting for one to
// arrive before the next; it times each to the last other agent.
func runPropagation(ctx context.Context, n int, p params) (PropagationResult, error) {
	res := PropagationResult{Agents: n, Updates: p.updates, PayloadBytes: p.payload, Namespace: p.namespace,
		SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)}}
	if n < 2 {
		return res, fmt.Errorf("propagation needs at least 2 agents, got %d", n)
	}
	c, err := startCluster(ctx, n, p.cluster)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.FormMs, res.MinPeers = benchstat.Ms(c.formed), c.minPeers

	write, prefix := propagationWrite(p.namespace, p.payload)
	tr, warm := newTracker(), newTracker()
	var dr drainers
	for i, a := range c.agents {
		dr.watch(a.Store(), prefix, 1<<14, func(ev storeEvent, at time.Time) {
			tr.seen(ev.Delta.Key, i, at)
			warm.seen(ev.Delta.Key, i, at)
		})
	}
	defer dr.stop()

	// Warm-up, not timed: every agent publishes on the topic once, so
	// the figure is the steady state rather than first-publish costs.
	for w, a := range c.agents {
		inst := fmt.Sprintf("warmup%03d", w)
		warm.begin(prefix+inst, w, n)
		if err := write(ctx, a, inst); err != nil {
			return res, fmt.Errorf("warm-up %s write on agent %d: %w", p.namespace, w, err)
		}
	}
	if err := waitWarm(ctx, warm, n, p.drain, "warm-up writes did not reach every agent"); err != nil {
		return res, err
	}

	rng := rand.New(rand.NewPCG(p.cluster.seed, uint64(n)))
	meter := startCPUMeter()
	for i := range p.updates {
		w := i % n
		inst := instanceName(i)
		tr.begin(prefix+inst, w, n)
		if err := write(ctx, c.agents[w], inst); err != nil {
			return res, fmt.Errorf("%s write on agent %d: %w", p.namespace, w, err)
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
	res.CPUCores, res.OtherCores = meter.cores()
	res.Latency = benchstat.Summarize(tr.latencies())
	for i := range p.updates {
		d, ok := tr.latency(prefix + instanceName(i))
		res.SamplesMs = append(res.SamplesMs, -1)
		if ok {
			res.SamplesMs[i] = math.Round(benchstat.Ms(d)*1000) / 1000
		}
	}
	if err := dr.stop(); err != nil {
		return res, err
	}
	return res, nil
}

// waitWarm waits until every one of the n warm-up writes warm tracks has
// arrived everywhere (what says what did not, past drain), then 100 ms
// more.
func waitWarm(ctx context.Context, warm *tracker, n int, drain time.Duration, what string) error {
	deadline := time.Now().Add(drain)
	for warm.outstanding() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d %s within %v: %s", warm.outstanding(), n, what, drain, warm.laggards())
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return sleepCtx(ctx, 100*time.Millisecond)
}
