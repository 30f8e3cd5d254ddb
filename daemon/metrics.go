package daemon

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

// nsCounter counts deltas per namespace (crdt.Namespaces order).
type nsCounter []atomic.Uint64

func newNSCounter() nsCounter { return make(nsCounter, len(crdt.Namespaces)) }

func (c nsCounter) add(ns crdt.Namespace, n uint64) {
	if i := nsIndex(ns); i >= 0 {
		c[i].Add(n)
	}
}

func nsIndex(ns crdt.Namespace) int {
	for i, n := range crdt.Namespaces {
		if n == ns {
			return i
		}
	}
	return -1
}

// leaseStats counts what happened to the kernel claims and leases of this
// agent.
type leaseStats struct {
	granted, denied, lost, expired, released atomic.Uint64
}

// count records one lease event (rpc.Lease*).
func (s *leaseStats) count(kind string) {
	switch kind {
	case rpc.LeaseGranted:
		s.granted.Add(1)
	case rpc.LeaseLost:
		s.lost.Add(1)
	case rpc.LeaseExpired:
		s.expired.Add(1)
	case rpc.LeaseReleased:
		s.released.Add(1)
	}
}

// newRegistry is the agent's own Prometheus registry (agents in one
// process each have theirs): the agent collector, the propagation lag
// histogram, and the Go runtime and process collectors.
func (a *Agent) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(agentCollector{a}, a.lag.hist,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rumor_"+name, help, labels, nil)
}

// The agent's metrics, read from its counters at scrape time.
var (
	descInfo         = desc("info", "Always 1; labels name this agent.", "node", "cluster", "region", "version")
	descDeltasIn     = desc("deltas_in_total", "Deltas from peers' gossip that changed local state.", "namespace")
	descDeltasOut    = desc("deltas_out_total", "Local deltas published on gossip.", "namespace")
	descPubFailed    = desc("publish_failed_deltas_total", "Local deltas whose publish failed (anti-entropy repairs them).")
	descMessagesOut  = desc("messages_out_total", "Gossip messages (batches of deltas) published.")
	descBytesIn      = desc("bytes_in_total", "Bytes received by the libp2p host, all protocols (updated about once a second).")
	descBytesOut     = desc("bytes_out_total", "Bytes sent by the libp2p host, all protocols (updated about once a second).")
	descRejections   = desc("rejections_total", "Gossip messages refused by the validator, by reason.", "reason")
	descPeersRefused = desc("peers_refused_total", "Connections and dials refused because the peer is not in allow_peers.")
	descMembers      = desc("members", "Other nodes heard, by failure-detector state.", "state")
	descConnected    = desc("connected_peers", "Peers with an open libp2p connection.")
	descLeasesHeld   = desc("leases_held", "Kernel leases this agent holds.")
	descLeasesGrant  = desc("leases_granted_total", "Kernel claims of this agent that were granted.")
	descLeasesDenied = desc("leases_denied_total", "Kernel claims of this agent that were denied (held elsewhere, or lost within the settle window).")
	descLeasesLost   = desc("leases_lost_total", "Leases of this agent lost to another node's claim (e.g. after a partition healed).")
	descLeasesExpire = desc("leases_expired_total", "Leases of this agent that ran out without renewal.")
	descLeasesRel    = desc("leases_released_total", "Leases this agent released.")
	descSettle       = desc("settle_window_seconds", "Current kernel claim settle window.")
	descAERounds     = desc("anti_entropy_rounds_total", "Anti-entropy exchanges completed.")
	descAERepaired   = desc("anti_entropy_repaired_total", "Deltas received by anti-entropy that changed local state.")
	descAERefused    = desc("anti_entropy_refused_total", "Deltas received by anti-entropy refused by the write policy or skew bound.")
	descAEFailed     = desc("anti_entropy_failed_total", "Anti-entropy exchanges that failed.")
	descWatchers     = desc("watchers", "Active store watchers (API watch streams and the agent's own).")
	descKeys         = desc("store_keys", "Keys in the local store, tombstones included.", "namespace")
	descBytes        = desc("store_bytes", "Approximate payload held: key, writer id and encoded value of every record kept (no Go overhead).", "namespace")
	descUnflushed    = desc("store_unflushed_keys", "Changed keys not yet written to disk.")
	descSilentProbes = desc("silent_peer_probes_total", "Connected peers that went suspect and were pinged, by verdict: kept (answered) or closed (no answer; redialled).", "verdict")
)

// agentCollector is a prometheus.Collector over the agent's counters.
type agentCollector struct{ a *Agent }

// Describe implements prometheus.Collector.
func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descInfo, descDeltasIn, descDeltasOut, descPubFailed, descMessagesOut, descBytesIn, descBytesOut,
		descRejections, descPeersRefused, descMembers, descConnected, descLeasesHeld, descLeasesGrant,
		descLeasesDenied, descLeasesLost, descLeasesExpire, descLeasesRel, descSettle, descAERounds,
		descAERepaired, descAERefused, descAEFailed, descWatchers, descKeys, descBytes, descUnflushed, descSilentProbes,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descInfo, 1, a.self, a.cfg.Cluster, a.cfg.Region, Version)
	usage := a.store.Usage()
	for i, ns := range crdt.Namespaces {
		counter(descDeltasIn, a.nsIn[i].Load(), string(ns))
		counter(descDeltasOut, a.pub.sentNS[i].Load(), string(ns))
		gauge(descKeys, float64(usage[ns].Keys), string(ns))
		gauge(descBytes, float64(usage[ns].Bytes), string(ns))
	}
	counter(descPubFailed, a.pub.failed.Load())
	counter(descMessagesOut, a.pub.messages.Load())
	in, out := a.node.Bandwidth()
	counter(descBytesIn, uint64(max(in, 0)))
	counter(descBytesOut, uint64(max(out, 0)))
	for reason, n := range a.node.Rejections() {
		counter(descRejections, n, reason)
	}
	counter(descPeersRefused, a.node.Refused())
	counter(descSilentProbes, a.silent.kept.Load(), "kept")
	counter(descSilentProbes, a.silent.closed.Load(), "closed")
	states := a.members.Count()
	for _, s := range []membership.State{membership.Alive, membership.Suspect, membership.Dead} {
		gauge(descMembers, float64(states[s]), s.String())
	}
	gauge(descConnected, float64(len(a.node.Peers())))
	a.leases.mu.Lock()
	held := len(a.leases.held)
	a.leases.mu.Unlock()
	gauge(descLeasesHeld, float64(held))
	counter(descLeasesGrant, a.leaseStats.granted.Load())
	counter(descLeasesDenied, a.leaseStats.denied.Load())
	counter(descLeasesLost, a.leaseStats.lost.Load())
	counter(descLeasesExpire, a.leaseStats.expired.Load())
	counter(descLeasesRel, a.leaseStats.released.Load())
	gauge(descSettle, a.settleWindow().Seconds())
	counter(descAERounds, a.sync.rounds.Load())
	counter(descAERepaired, a.sync.repaired.Load())
	counter(descAERefused, a.sync.refused.Load())
	counter(descAEFailed, a.sync.failed.Load())
	gauge(descWatchers, float64(a.store.Watchers()))
	gauge(descUnflushed, float64(a.store.Unflushed()))
}
