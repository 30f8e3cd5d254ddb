package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/membership"
)

// MemberCostResult is figure 9 for one cluster size: what membership costs
// each agent of an idle cluster with the default settings.
type MemberCostResult struct {
	Agents   int     `json:"agents"`
	Seconds  float64 `json:"seconds"`
	FormMs   float64 `json:"form_ms"`
	MinPeers int     `json:"min_peers"`
	// MsgsIn is membership messages received per agent per second, the
	// mean over agents (MsgsInMax the busiest agent's): probe requests
	// (pings and requests to ping another node), answers to this agent's
	// own requests, and other agents' member entries and accusations
	// that changed its state.
	MsgsIn    float64 `json:"msgs_in_per_s"`
	MsgsInMax float64 `json:"msgs_in_per_s_max"`
	// BytesIn is the probe protocol's bytes received per agent per
	// second, as libp2p counted them on its streams (payload and
	// protocol negotiation; not yamux framing, Noise or TCP headers).
	BytesIn    float64 `json:"bytes_in_per_s"`
	BytesInMax float64 `json:"bytes_in_per_s_max"`
	// AllBytesIn is every libp2p byte received per agent per second
	// (GossipSub control and any messages, anti-entropy, probes).
	AllBytesIn float64 `json:"all_bytes_in_per_s"`
	// Accusations counts the accusations written while measuring: false,
	// as no agent stopped.
	Accusations uint64  `json:"accusations"`
	CPUCores    float64 `json:"cpu_cores"`
	OtherCores  float64 `json:"other_cores"`
}

// memberCostParams configure figure 9.
type memberCostParams struct {
	sizes   []int
	measure time.Duration
}

// runMemberCost starts n agents with the default membership settings,
// lets them settle, and counts what membership costs each over
// mp.measure.
func runMemberCost(ctx context.Context, n int, mp memberCostParams, p params) (MemberCostResult, error) {
	opt := p.cluster
	opt.heartbeat = config.DefaultConfig().Heartbeat
	c, err := startCluster(ctx, n, opt)
	if err != nil {
		return MemberCostResult{}, err
	}
	defer c.close()
	proto := protocol.ID(membership.ProbeProtocol(c.cfgs[0].Cluster))
	type sample struct {
		m          membership.Counters
		probe, all int64
	}
	take := func() []sample {
		out := make([]sample, len(c.agents))
		for i, a := range c.agents {
			out[i].m = a.Monitor().Counters()
			out[i].probe = a.Gossip().BandwidthByProtocol()[proto].TotalIn
			out[i].all, _ = a.Gossip().Bandwidth()
		}
		return out
	}
	meter, t0, before := startCPUMeter(), time.Now(), take()
	if err := sleepCtx(ctx, mp.measure); err != nil {
		return MemberCostResult{}, err
	}
	after, secs := take(), time.Since(t0).Seconds()
	r := MemberCostResult{Agents: n, Seconds: secs, FormMs: float64(c.formed) / float64(time.Millisecond), MinPeers: c.minPeers}
	r.CPUCores, r.OtherCores = meter.cores()
	for i := range after {
		a, b := after[i].m, before[i].m
		msgs := float64(a.ProbesReceived-b.ProbesReceived+a.PingReqsReceived-b.PingReqsReceived+
			a.ProbesSent-b.ProbesSent+a.PingReqsSent-b.PingReqsSent+a.Learnt-b.Learnt) / secs
		bytes := float64(after[i].probe-before[i].probe) / secs
		r.MsgsIn += msgs / float64(n)
		r.BytesIn += bytes / float64(n)
		r.AllBytesIn += float64(after[i].all-before[i].all) / secs / float64(n)
		r.MsgsInMax, r.BytesInMax = max(r.MsgsInMax, msgs), max(r.BytesInMax, bytes)
		r.Accusations += a.Accusations - b.Accusations
	}
	return r, nil
}

// runMemberCostFigure runs figure 9 at every size asked.
func runMemberCostFigure(ctx context.Context, out io.Writer, p params, rep *Report, fail func(string, error)) {
	for _, n := range p.memberCost.sizes {
		if ctx.Err() != nil || !p.phases[9] {
			return
		}
		fmt.Fprintf(out, "[9] membership cost: %d idle agents, measured for %v...\n", n, p.memberCost.measure)
		r, err := runMemberCost(ctx, n, p.memberCost, p)
		if err != nil {
			fail(fmt.Sprintf("membership cost N=%d", n), err)
			continue
		}
		rep.MemberCost = append(rep.MemberCost, r)
	}
}

// printMemberCost prints figure 9, with each size's ratio to the smallest.
func printMemberCost(tw io.Writer, rep Report) {
	d := config.DefaultConfig()
	fmt.Fprintf(tw, "\n9. Membership cost per agent: idle agents in one process, the defaults (heartbeat %v, probe_peers %d, suspect_after %v, dead_after %v);\n"+
		"   messages received per agent per second (pings and ping requests answered, answers to its own, gossiped member changes), the probe protocol's bytes,\n"+
		"   and every libp2p byte received; the heartbeat gossiped to every node before would be N-1 messages a second. Target: flat within 1.5x from N=10 up.\n",
		d.Heartbeat, d.ProbePeers, d.SuspectAfter, d.DeadAfter)
	if len(rep.MemberCost) == 0 {
		fmt.Fprintln(tw, "(not measured)")
		return
	}
	fmt.Fprintln(tw, "N\tmsgs/s mean (max)\tvs first N\tprobe B/s mean (max)\tall libp2p B/s\tfalse accusations\tmin peers\tCPU bench/others\t")
	base := rep.MemberCost[0]
	for _, r := range rep.MemberCost {
		fmt.Fprintf(tw, "%d\t%.1f (%.1f)\t%.2fx\t%s (%s)\t%s\t%d\t%d\t%.2f / %.2f\t\n", r.Agents, r.MsgsIn, r.MsgsInMax, r.MsgsIn/base.MsgsIn,
			benchstat.FmtBytes(r.BytesIn), benchstat.FmtBytes(r.BytesInMax), benchstat.FmtBytes(r.AllBytesIn), r.Accusations, r.MinPeers, r.CPUCores, r.OtherCores)
	}
}
