package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// peer is one system under test, set up for one figure. Its receivers,
// numbered 0..receivers()-1, report every message they get, once, to the
// hub it was opened with.
type peer interface {
	// receivers is how many endpoints must get each message.
	receivers() int
	// writers is how many endpoints can publish; publish(w, …) takes w in
	// 0..writers()-1.
	writers() int
	// self returns the receiver index of writer w, whose own copy does not
	// count, or -1 when the writer is not a receiver.
	self(w int) int
	// publish sends msg from writer w. It may buffer; flush sends what
	// is buffered.
	publish(w int, msg []byte) error
	flush() error
	// stats reports what the peer saw besides deliveries.
	stats() peerStats
	// serverPID is a process doing the peer's work outside this one (the
	// Redis server), 0 for none.
	serverPID() int
	close() error
}

// peerStats is what a peer reports besides deliveries.
type peerStats struct {
	// Receipts counts messages received including duplicates (memberlist);
	// 0 where every receipt is a delivery.
	Receipts int64
	// Dropped counts messages the peer itself reported dropping
	// (memberlist's "handler queue full").
	Dropped int64
	// Problems lists warnings and errors the peer logged (first few).
	Problems []string
	// ProblemCount counts every such warning or error.
	ProblemCount int64
	// UDPRcvbufErrors and UDPInErrors are the machine's UDP receive-buffer
	// overflows and input errors meanwhile (/proc/net/snmp; memberlist
	// gossips over UDP, and such a drop is silent).
	UDPRcvbufErrors int64
	UDPInErrors     int64
}

// hub receives every delivery: it counts them per receiver and feeds the
// trackers.
type hub struct {
	warm, timed *tracker
	sampleEvery uint64
	counts      []atomic.Int64
	lastAt      []atomic.Int64 // unix nanos of each receiver's latest timed delivery
	total       atomic.Int64   // every delivery, warm-up included
}

func newHub(receivers int, sampleEvery uint64) *hub {
	return &hub{warm: newTracker(), timed: newTracker(), sampleEvery: max(sampleEvery, 1),
		counts: make([]atomic.Int64, receivers), lastAt: make([]atomic.Int64, receivers)}
}

// deliver records that receiver got message (tag, seq) at time at.
func (h *hub) deliver(receiver int, tag byte, seq uint64, at time.Time) {
	if receiver < 0 || receiver >= len(h.counts) {
		return
	}
	h.total.Add(1)
	switch tag {
	case tagWarmup:
		h.warm.seen(seq, receiver, at)
	case tagTimed:
		h.counts[receiver].Add(1)
		h.lastAt[receiver].Store(at.UnixNano())
		if seq%h.sampleEvery == 0 {
			h.timed.seen(seq, receiver, at)
		}
	}
}

// slowest returns the fewest timed messages any receiver other than skip
// got.
func (h *hub) slowest(skip int) int64 {
	least := int64(math.MaxInt64)
	for i := range h.counts {
		if i != skip {
			least = min(least, h.counts[i].Load())
		}
	}
	return least
}

// waitDrain waits until done() holds, or until no delivery arrived for
// p.drain, or p.drainMax passed. It reports whether done() held.
func (h *hub) waitDrain(ctx context.Context, p params, done func() bool) bool {
	start, last := time.Now(), h.total.Load()
	lastProgress := start
	for !done() {
		now := time.Now()
		if t := h.total.Load(); t != last {
			last, lastProgress = t, now
		}
		if now.Sub(lastProgress) >= p.drain || now.Sub(start) >= p.drainMax || ctx.Err() != nil {
			return done()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// PropagationResult is the propagation figure for one peer and size.
type PropagationResult struct {
	Peer string `json:"peer"`
	// N is the subscribers (Redis) or nodes including the writer
	// (memberlist); Receivers is how many must get each message.
	N         int `json:"n"`
	Receivers int `json:"receivers"`
	Writers   int `json:"writers"`
	Updates   int `json:"updates"`
	Lost      int `json:"lost"`
	// WarmupLost counts untimed warm-up messages (one per writer) that
	// never reached every receiver.
	WarmupLost   int     `json:"warmup_lost"`
	PayloadBytes int     `json:"payload_bytes"`
	FormMs       float64 `json:"form_ms"`
	SpacingMs    [2]int  `json:"spacing_ms"`
	// Latency is from just before the publish call until the last receiver
	// got the message.
	Latency benchstat.Summary `json:"latency"`
	// CPUCores is this process's CPU over the timed writes and their
	// drain, in cores; ServerCores the Redis server's; OtherCores every
	// other process's.
	CPUCores    float64 `json:"cpu_cores"`
	ServerCores float64 `json:"server_cores"`
	OtherCores  float64 `json:"other_cores"`
	// DupPerDelivery is receipts per delivery minus one (memberlist: the
	// same message arriving again from another node).
	DupPerDelivery float64   `json:"duplicates_per_delivery"`
	Stats          peerStats `json:"peer_stats"`
	// SamplesMs lists every write's latency in write order; -1 for one that
	// never reached every receiver.
	SamplesMs []float64 `json:"samples_ms"`
}

// opener starts a peer of size n whose receivers report to h, returning it
// and how long it took to form.
type opener func(ctx context.Context, n int, h *hub) (peer, time.Duration, error)

// runPropagation opens a peer of size n and publishes p.updates messages,
// one every 10-20 ms (jittered), from a rotating writer, without waiting
// for one to arrive before the next; it times each to the last receiver.
// After one untimed message per writer, like rumor-bench.
func runPropagation(ctx context.Context, name string, open opener, n int, p params) (PropagationResult, error) {
	res := PropagationResult{Peer: name, N: n, Updates: p.updates, PayloadBytes: p.payload,
		SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)}}
	h := newHub(n, 1)
	pr, formed, err := open(ctx, n, h)
	if err != nil {
		return res, err
	}
	defer pr.close()
	res.FormMs, res.Receivers, res.Writers = benchstat.Ms(formed), pr.receivers(), pr.writers()
	if len(h.counts) != pr.receivers() {
		return res, fmt.Errorf("%s: hub for %d receivers, peer has %d", name, len(h.counts), pr.receivers())
	}

	// Warm-up, not timed: every writer publishes once.
	for w := range pr.writers() {
		h.warm.begin(uint64(w), pr.receivers(), pr.self(w))
		if err := publish(pr, w, newMessage(tagWarmup, uint64(w), p.payload)); err != nil {
			return res, fmt.Errorf("warm-up publish from writer %d: %w", w, err)
		}
	}
	// A warm-up message that never reaches everyone is a finding about
	// the peer (memberlist's queue gives no guarantee), not a failure.
	h.waitDrain(ctx, p, func() bool { return h.warm.outstanding() == 0 })
	res.WarmupLost = h.warm.outstanding()
	if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
		return res, err
	}

	rng := rand.New(rand.NewPCG(p.seed, uint64(n)))
	meter := startCPUMeter(pr.serverPID())
	before := pr.stats()
	for i := range p.updates {
		w := i % pr.writers()
		seq := uint64(i)
		h.timed.begin(seq, pr.receivers(), pr.self(w))
		if err := publish(pr, w, newMessage(tagTimed, seq, p.payload)); err != nil {
			return res, fmt.Errorf("publish from writer %d: %w", w, err)
		}
		gap := p.spacingMin
		if p.spacingMax > p.spacingMin {
			gap += time.Duration(rng.Int64N(int64(p.spacingMax - p.spacingMin)))
		}
		if err := sleepCtx(ctx, gap); err != nil {
			return res, err
		}
	}
	h.waitDrain(ctx, p, func() bool { return h.timed.outstanding() == 0 })
	res.Lost = h.timed.outstanding()
	res.CPUCores, res.ServerCores, res.OtherCores = meter.cores()
	res.Stats = diffStats(pr.stats(), before)
	var delivered int64
	for i := range h.counts {
		delivered += h.counts[i].Load()
	}
	if res.Stats.Receipts > 0 && delivered > 0 {
		res.DupPerDelivery = float64(res.Stats.Receipts)/float64(delivered) - 1
	}
	res.Latency = benchstat.Summarize(h.timed.latencies())
	for i := range p.updates {
		d, ok := h.timed.latency(uint64(i))
		res.SamplesMs = append(res.SamplesMs, -1)
		if ok {
			res.SamplesMs[i] = math.Round(benchstat.Ms(d)*1000) / 1000
		}
	}
	return res, ctx.Err()
}

// publish publishes and flushes at once.
func publish(pr peer, w int, msg []byte) error {
	if err := pr.publish(w, msg); err != nil {
		return err
	}
	return pr.flush()
}

// diffStats returns the counters of now minus before; problems are those
// logged since before.
func diffStats(now, before peerStats) peerStats {
	d := peerStats{Receipts: now.Receipts - before.Receipts, Dropped: now.Dropped - before.Dropped,
		ProblemCount: now.ProblemCount - before.ProblemCount, UDPRcvbufErrors: now.UDPRcvbufErrors - before.UDPRcvbufErrors,
		UDPInErrors: now.UDPInErrors - before.UDPInErrors}
	if len(now.Problems) > len(before.Problems) {
		d.Problems = now.Problems[len(before.Problems):]
	}
	return d
}

// ThroughputResult is the throughput figure for one peer: one publisher,
// every other endpoint counting what it gets.
type ThroughputResult struct {
	Peer         string `json:"peer"`
	N            int    `json:"n"`
	Receivers    int    `json:"receivers"`
	Window       int    `json:"window"`
	PayloadBytes int    `json:"payload_bytes"`
	// WarmupLost is 1 when the untimed warm-up message never reached
	// every receiver.
	WarmupLost int `json:"warmup_lost"`

	// Written is how many messages the publisher sent in WriteSeconds.
	Written      int64   `json:"written"`
	WriteSeconds float64 `json:"write_seconds"`
	// SlowestDelivered is what the slowest receiver got by the end of the
	// drain; Lost is Written minus that.
	SlowestDelivered int64 `json:"slowest_delivered"`
	Lost             int64 `json:"lost"`
	// Seconds runs from the first write until the last delivery on any
	// receiver; UpdatesPerSec = SlowestDelivered / Seconds.
	Seconds       float64 `json:"seconds"`
	UpdatesPerSec float64 `json:"updates_per_sec"`
	// DrainSeconds is how long after the last write the drain waited.
	DrainSeconds float64 `json:"drain_seconds"`
	// Latency samples every SampleEvery-th message, to the last receiver.
	SampleEvery int               `json:"sample_every"`
	Latency     benchstat.Summary `json:"latency"`
	LatencyLost int               `json:"latency_samples_lost"`

	CPUCores       float64   `json:"cpu_cores"`
	ServerCores    float64   `json:"server_cores"`
	OtherCores     float64   `json:"other_cores"`
	DupPerDelivery float64   `json:"duplicates_per_delivery"`
	Stats          peerStats `json:"peer_stats"`
}

// runThroughput opens a peer of size n; writer 0 publishes as fast as it
// can for p.tpDuration while staying at most p.window messages ahead of the
// slowest receiver, and every receiver counts what it gets.
func runThroughput(ctx context.Context, name string, open opener, n int, p params) (ThroughputResult, error) {
	res := ThroughputResult{Peer: name, N: n, Window: p.window, PayloadBytes: p.payload, SampleEvery: p.sampleEvery}
	h := newHub(n, uint64(p.sampleEvery))
	pr, _, err := open(ctx, n, h)
	if err != nil {
		return res, err
	}
	defer pr.close()
	skip := pr.self(0)
	res.Receivers = pr.receivers()
	if skip >= 0 {
		res.Receivers--
	}
	// One untimed message, so connections and queues are warm.
	h.warm.begin(0, pr.receivers(), skip)
	if err := publish(pr, 0, newMessage(tagWarmup, 0, p.payload)); err != nil {
		return res, fmt.Errorf("warm-up publish: %w", err)
	}
	h.waitDrain(ctx, p, func() bool { return h.warm.outstanding() == 0 })
	res.WarmupLost = h.warm.outstanding()

	meter := startCPUMeter(pr.serverPID())
	before := pr.stats()
	start := time.Now()
	stopAt := start.Add(p.tpDuration)
	var seq uint64
	for ctx.Err() == nil && time.Now().Before(stopAt) {
		if int64(seq)-h.slowest(skip) >= int64(p.window) {
			if err := pr.flush(); err != nil {
				return res, fmt.Errorf("publish: %w", err)
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if seq%uint64(p.sampleEvery) == 0 {
			h.timed.begin(seq, pr.receivers(), skip)
		}
		if err := pr.publish(0, newMessage(tagTimed, seq, p.payload)); err != nil {
			return res, fmt.Errorf("publish: %w", err)
		}
		seq++
	}
	if err := pr.flush(); err != nil {
		return res, fmt.Errorf("publish: %w", err)
	}
	res.WriteSeconds = time.Since(start).Seconds()
	res.Written = int64(seq)
	drainFrom := time.Now()
	h.waitDrain(ctx, p, func() bool { return h.slowest(skip) >= res.Written })
	res.DrainSeconds = time.Since(drainFrom).Seconds()
	res.CPUCores, res.ServerCores, res.OtherCores = meter.cores()
	res.Stats = diffStats(pr.stats(), before)
	res.SlowestDelivered = h.slowest(skip)
	res.Lost = res.Written - res.SlowestDelivered
	var last, delivered int64
	for i := range h.lastAt {
		last = max(last, h.lastAt[i].Load())
		delivered += h.counts[i].Load()
	}
	if last > 0 {
		res.Seconds = time.Unix(0, last).Sub(start).Seconds()
	}
	if res.Seconds > 0 {
		res.UpdatesPerSec = float64(res.SlowestDelivered) / res.Seconds
	}
	if res.Stats.Receipts > 0 && delivered > 0 {
		res.DupPerDelivery = float64(res.Stats.Receipts)/float64(delivered) - 1
	}
	res.Latency = benchstat.Summarize(h.timed.latencies())
	res.LatencyLost = h.timed.outstanding()
	return res, ctx.Err()
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
