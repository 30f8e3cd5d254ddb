package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store/watch"
)

// storeEvent is a store watcher's event.
type storeEvent = watch.Event

// ThroughputResult is figures 2 and 3: sustained blacklist writes from one
// publisher to the other agents, and what they cost on the wire.
type ThroughputResult struct {
	Agents       int `json:"agents"`
	Receivers    int `json:"receivers"`
	Writers      int `json:"writers"`
	Window       int `json:"window"`
	PayloadBytes int `json:"payload_bytes"`
	MinPeers     int `json:"min_peers"`

	// Written is how many writes the publisher made in WriteSeconds.
	Written      int64   `json:"written"`
	WriteSeconds float64 `json:"write_seconds"`
	// SlowestApplied is what the slowest receiver applied by the drain
	// deadline; Lost is Written minus that.
	SlowestApplied int64 `json:"slowest_applied"`
	Lost           int64 `json:"lost"`
	// Seconds runs from the first write until the slowest receiver had
	// everything (or the drain deadline); UpdatesPerSec = SlowestApplied / Seconds.
	Seconds       float64 `json:"seconds"`
	UpdatesPerSec float64 `json:"updates_per_sec"`
	// Latency samples every SampleEvery-th write, to the last receiver.
	SampleEvery int               `json:"sample_every"`
	Latency     benchstat.Summary `json:"latency"`
	LatencyLost int               `json:"latency_samples_lost"`

	// CPUCores is the process's CPU time (user + system) during the
	// writing and draining, divided by Seconds: how many cores were busy.
	CPUCores float64 `json:"cpu_cores"`
	// OtherCores is what other processes on the machine used meanwhile.
	OtherCores float64 `json:"other_cores"`

	Wire WireResult `json:"wire"`
}

// WireResult is figure 3: bytes received per receiver per update during the
// throughput run, from the libp2p bandwidth counters (all protocols).
type WireResult struct {
	// BytesInPerReceiver is the mean over receivers of bytes received
	// between the snapshots around the run.
	BytesInPerReceiver float64 `json:"bytes_in_per_receiver"`
	// IdleBytesPerSec is a receiver's background (heartbeats, GossipSub
	// control) measured before the run, per second.
	IdleBytesPerSec float64 `json:"idle_bytes_per_sec"`
	WindowSeconds   float64 `json:"window_seconds"`
	// PerUpdate is BytesInPerReceiver / updates; NetPerUpdate subtracts
	// the idle background over the same window first.
	PerUpdate    float64 `json:"per_update"`
	NetPerUpdate float64 `json:"net_per_update"`
	// GossipSub's own view over the same window, summed over receivers
	// (gossip.Node.Traffic): Messages are first copies delivered (one
	// message carries a batch of updates), Duplicates the further copies
	// that arrived and were dropped, and the control traffic.
	Messages      uint64 `json:"messages"`
	Duplicates    uint64 `json:"duplicates"`
	IDontWantSent uint64 `json:"idontwant_sent"`
	IHaveIn       uint64 `json:"ihave_in"`
	IWantIn       uint64 `json:"iwant_in"`
	// ByProtocol is bytes received per receiver per update, by libp2p
	// protocol (GossipSub, anti-entropy, ...); streams without a protocol
	// (handshakes) are under "".
	ByProtocol map[string]float64 `json:"by_protocol,omitempty"`
}

// DuplicatesPerMessage is how many extra copies of each GossipSub message a
// receiver got.
func (w WireResult) DuplicatesPerMessage() float64 {
	if w.Messages == 0 {
		return 0
	}
	return float64(w.Duplicates) / float64(w.Messages)
}

// receiverTraffic sums GossipSub's counters and the per-protocol bytes over
// the receivers.
func receiverTraffic(agents []*agent.Agent) (gossip.Traffic, map[string]int64) {
	var sum gossip.Traffic
	bytes := make(map[string]int64)
	for _, a := range agents {
		t := a.Gossip().Traffic()
		sum.Delivered += t.Delivered
		sum.Duplicates += t.Duplicates
		sum.IDontWantSent += t.IDontWantSent
		sum.IHaveIn += t.IHaveIn
		sum.IWantIn += t.IWantIn
		for p, st := range a.Gossip().BandwidthByProtocol() {
			bytes[string(p)] += st.TotalIn
		}
	}
	return sum, bytes
}

// blacklistReason returns a reason whose encoded bl value is size bytes.
func blacklistReason(size int) string {
	overhead := len(crdt.Encode(crdt.BlacklistValue{Reason: "r"})) - 1
	return strings.Repeat("r", max(size-overhead, 1))
}

// runThroughput starts p.tpAgents agents; agent 0 adds blacklist entries
// from p.writers goroutines for p.tpDuration, keeping at most p.window
// writes ahead of the slowest receiver, and the others count what they apply.
func runThroughput(ctx context.Context, p params) (ThroughputResult, error) {
	n := p.tpAgents
	res := ThroughputResult{Agents: n, Receivers: n - 1, Writers: p.writers, Window: p.window,
		PayloadBytes: p.payload, SampleEvery: p.sampleEvery}
	if n < 2 {
		return res, fmt.Errorf("throughput needs at least 2 agents, got %d", n)
	}
	c, err := startCluster(ctx, n, p.cluster)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.MinPeers = c.minPeers
	receivers := c.agents[1:]

	const prefix = "bl/bench/t"
	tr := newTracker()
	counts := make([]atomic.Int64, n)
	lastAt := make([]atomic.Int64, n) // unix nanos of each agent's latest apply
	var dr drainers
	for i, a := range c.agents {
		if i == 0 {
			continue // the publisher: its own applies are not the figure
		}
		dr.watch(a.Store(), prefix, 1<<16, func(ev storeEvent, at time.Time) {
			counts[i].Add(1)
			lastAt[i].Store(at.UnixNano())
			if seq, err := strconv.Atoi(ev.Delta.Key[len(prefix):]); err == nil && seq%p.sampleEvery == 0 {
				tr.seen(ev.Delta.Key, i, at)
			}
		})
	}
	defer dr.stop()
	slowest := func() int64 {
		least := counts[1].Load()
		for i := 2; i < n; i++ {
			least = min(least, counts[i].Load())
		}
		return least
	}

	// Idle background, then the run, between bandwidth snapshots. The
	// counters update about once a second, hence the pauses.
	bwIn := func() int64 {
		var sum int64
		for _, a := range receivers {
			in, _ := a.Gossip().Bandwidth()
			sum += in
		}
		return sum
	}
	idleFrom, idleStart := bwIn(), time.Now()
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return res, err
	}
	runFrom, runStart := bwIn(), time.Now()
	trFrom, protoFrom := receiverTraffic(receivers)
	idleRate := float64(runFrom-idleFrom) / runStart.Sub(idleStart).Seconds() / float64(len(receivers))

	reason := blacklistReason(p.payload)
	var (
		seq      atomic.Int64
		writeErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	if p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	meter := startCPUMeter()
	start := time.Now()
	stopAt := start.Add(p.tpDuration)
	for range p.writers {
		wg.Go(func() {
			for {
				now := time.Now()
				if now.After(stopAt) || ctx.Err() != nil || writeErr.Load() != nil {
					return
				}
				if seq.Load()-slowest() >= int64(p.window) {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				i := seq.Add(1) - 1
				id := fmt.Sprintf("t%09d", i)
				if i%int64(p.sampleEvery) == 0 {
					tr.begin("bl/bench/"+id, 0, n)
				}
				if _, err := c.agents[0].BlacklistAdd(ctx, "bench", id, rpc.BlacklistAdd{Reason: reason}); err != nil {
					writeErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	var timeline sync.WaitGroup
	stopTimeline := sync.OnceFunc(func() {})
	if p.timeline != nil {
		stop := make(chan struct{})
		stopTimeline = sync.OnceFunc(func() { close(stop); timeline.Wait() })
		timeline.Go(func() {
			printTimeline(p.timeline, start, stop, func() (int64, []int64) {
				applied := make([]int64, n-1)
				for i := range applied {
					applied[i] = counts[i+1].Load()
				}
				return seq.Load(), applied
			})
		})
	}
	defer stopTimeline()
	wg.Wait()
	res.WriteSeconds = time.Since(start).Seconds()
	if e := writeErr.Load(); e != nil {
		return res, fmt.Errorf("bl add on the publisher: %w", *e)
	}
	res.Written = seq.Load()

	deadline := time.Now().Add(p.drain)
	for slowest() < res.Written && time.Now().Before(deadline) {
		if err := dr.failed(); err != nil {
			return res, err
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return res, err
		}
	}
	end := time.Now()
	res.CPUCores, res.OtherCores = meter.cores()
	stopTimeline()
	res.SlowestApplied = slowest()
	res.Lost = res.Written - res.SlowestApplied
	if res.Lost == 0 {
		var last int64
		for i := 1; i < n; i++ {
			last = max(last, lastAt[i].Load())
		}
		end = time.Unix(0, last)
	}
	res.Seconds = end.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.UpdatesPerSec = float64(res.SlowestApplied) / res.Seconds
	}
	res.Latency = benchstat.Summarize(tr.latencies())
	res.LatencyLost = tr.outstanding()

	if err := sleepCtx(ctx, 1500*time.Millisecond); err != nil {
		return res, err
	}
	runTo, runEnd := bwIn(), time.Now()
	trTo, protoTo := receiverTraffic(receivers)
	w := &res.Wire
	w.Messages = trTo.Delivered - trFrom.Delivered
	w.Duplicates = trTo.Duplicates - trFrom.Duplicates
	w.IDontWantSent = trTo.IDontWantSent - trFrom.IDontWantSent
	w.IHaveIn = trTo.IHaveIn - trFrom.IHaveIn
	w.IWantIn = trTo.IWantIn - trFrom.IWantIn
	if res.SlowestApplied > 0 {
		w.ByProtocol = make(map[string]float64)
		for p, b := range protoTo {
			if d := b - protoFrom[p]; d > 0 {
				w.ByProtocol[p] = float64(d) / float64(len(receivers)) / float64(res.SlowestApplied)
			}
		}
	}
	w.IdleBytesPerSec = idleRate
	w.WindowSeconds = runEnd.Sub(runStart).Seconds()
	w.BytesInPerReceiver = float64(runTo-runFrom) / float64(len(receivers))
	if res.SlowestApplied > 0 {
		w.PerUpdate = w.BytesInPerReceiver / float64(res.SlowestApplied)
		w.NetPerUpdate = (w.BytesInPerReceiver - idleRate*w.WindowSeconds) / float64(res.SlowestApplied)
	}
	if err := dr.stop(); err != nil {
		return res, err
	}
	return res, nil
}

// printTimeline prints, every 100 ms until stop closes, how many writes the
// publisher made and how many each receiver applied: stalls show up as
// receivers standing still while the publisher is ahead.
func printTimeline(out io.Writer, start time.Time, stop <-chan struct{}, progress func() (written int64, applied []int64)) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			written, applied := progress()
			fmt.Fprintf(out, "  %6.0f ms  written %7d  applied", benchstat.Ms(time.Since(start)), written)
			for _, a := range applied {
				fmt.Fprintf(out, " %7d", a)
			}
			fmt.Fprintln(out)
		}
	}
}
