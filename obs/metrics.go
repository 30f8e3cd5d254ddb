// Package obs makes an agent observable: its Prometheus metrics (read from
// a Snapshot of the agent's counters at scrape time), the HTTP server of
// /metrics and the status page, and the convergence probe (the propagation
// lag of peers' writes).
package obs

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Snapshot is what an agent's metrics show, read when they are scraped.
// Maps by label value; a label value missing from a map reads 0, and the
// label sets Labels lists are always present.
type Snapshot struct {
	Node, Cluster, Region, Version string

	// DeltasIn counts, by namespace, deltas from peers that changed the
	// state; DeltasOut local deltas published.
	DeltasIn, DeltasOut map[string]uint64
	MessagesOut         uint64 // batches published
	PublishFailed       uint64 // deltas whose publish failed
	BytesIn, BytesOut   int64  // libp2p traffic, all protocols
	// Refused counts deltas refused by the ingest path, by path and reason.
	Refused map[string]map[string]uint64
	// Rejections counts gossip messages refused, by reason.
	Rejections   map[string]uint64
	PeersRefused uint64
	MDNSIgnored  uint64 // peers heard of by mDNS that allow_peers refuses

	Members   map[string]int // other nodes, by state
	Connected int

	LeasesHeld int
	Leases     map[string]uint64 // this node's lease events, by kind (granted, denied, lost, expired, released)
	SettleSecs float64

	AERounds, AERepaired, AEFailed uint64

	Watchers, Unflushed int
	Keys                map[string]int   // by namespace, tombstones included
	Bytes               map[string]int64 // approximate payload, by namespace

	// Probes counts the failure detector's probe messages, by kind
	// (ping_sent, ping_received, pingreq_sent, pingreq_received);
	// ProbeBytesIn and ProbeBytesOut their payload bytes; MemberEvents
	// what it wrote or did (accusation, refutation, announcement,
	// closed_link).
	Probes                      map[string]uint64
	ProbeBytesIn, ProbeBytesOut uint64
	MemberEvents                map[string]uint64
}

// Labels lists the label values every labelled metric shows (at 0 until
// something happens), so that alerts and dashboards see the series from
// the start: rate() and increase() need the 0 before the first event, and
// an alert on a series that does not exist yet never fires.
type Labels struct {
	// Namespaces label rumor_deltas_in_total, rumor_deltas_out_total,
	// rumor_store_keys and rumor_store_bytes.
	Namespaces []string
	// Paths and Reasons label rumor_refused_deltas_total (every path
	// with every reason).
	Paths, Reasons []string
	// MessageReasons are the reasons only a whole gossip message is
	// refused under (the gossip layer's own: oversized, invalid, ...):
	// rumor_rejections_total shows them and Reasons, and any other
	// reason once it is counted.
	MessageReasons []string
	// MemberStates label rumor_members.
	MemberStates []string
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rumor_"+name, help, labels, nil)
}

// The agent's metrics.
var (
	descInfo         = desc("info", "Always 1; labels name this agent.", "node", "cluster", "region", "version")
	descDeltasIn     = desc("deltas_in_total", "Deltas from peers (gossip and anti-entropy) that changed local state.", "namespace")
	descDeltasOut    = desc("deltas_out_total", "Local deltas published on gossip.", "namespace")
	descPubFailed    = desc("publish_failed_deltas_total", "Local deltas whose publish failed (anti-entropy repairs them).")
	descMessagesOut  = desc("messages_out_total", "Gossip messages (signed batches of deltas) published.")
	descBytesIn      = desc("bytes_in_total", "Bytes received by the libp2p host, all protocols (updated about once a second).")
	descBytesOut     = desc("bytes_out_total", "Bytes sent by the libp2p host, all protocols (updated about once a second).")
	descRefused      = desc("refused_deltas_total", "Deltas refused by the ingest path, by the path they came by (local, gossip, anti-entropy, restore) and reason.", "path", "reason")
	descRejections   = desc("rejections_total", "Gossip messages refused by the validator, by reason.", "reason")
	descPeersRefused = desc("peers_refused_total", "Connections and dials refused because the peer is not in allow_peers.")
	descMDNSIgnored  = desc("mdns_ignored_total", "Peers heard of by mDNS that were ignored because allow_peers refuses them.")
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
	descAERefused    = desc("anti_entropy_refused_total", "Deltas received by anti-entropy and refused by the ingest path (any reason; see rumor_refused_deltas_total).")
	descAEFailed     = desc("anti_entropy_failed_total", "Anti-entropy exchanges that failed.")
	descWatchers     = desc("watchers", "Active store watchers (API watch streams and the agent's own).")
	descKeys         = desc("store_keys", "Keys in the local store, tombstones included.", "namespace")
	descBytes        = desc("store_bytes", "Approximate payload held: key, writer id and encoded value of every record kept (no Go overhead).", "namespace")
	descUnflushed    = desc("store_unflushed_keys", "Changed keys not yet written to disk.")
	descProbes       = desc("probes_total", "Failure detector probe messages, by kind: ping_sent, ping_received, pingreq_sent, pingreq_received (a request to ping another node).", "kind")
	descProbeBytes   = desc("probe_bytes_total", "Failure detector probe payload bytes, by direction (in, out).", "direction")
	descMemberEvents = desc("member_events_total", "What this node's failure detector did: accusation (wrote one), refutation (raised its incarnation), announcement (wrote its member entry), closed_link (closed the connection to a node no one reached).", "kind")
)

// collector is a prometheus.Collector over an agent's snapshots.
type collector struct {
	snap   func() Snapshot
	labels Labels
}

// NewRegistry returns an agent's own Prometheus registry (agents in one
// process each have theirs): the agent's metrics, read from snap at every
// scrape, the lag probe's histogram, and the Go runtime and process
// collectors.
func NewRegistry(snap func() Snapshot, labels Labels, lag *LagProbe) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{snap: snap, labels: labels}, lag.hist,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descInfo, descDeltasIn, descDeltasOut, descPubFailed, descMessagesOut, descBytesIn, descBytesOut,
		descRefused, descRejections, descPeersRefused, descMDNSIgnored, descMembers, descConnected, descLeasesHeld, descLeasesGrant,
		descLeasesDenied, descLeasesLost, descLeasesExpire, descLeasesRel, descSettle, descAERounds, descAERepaired,
		descAERefused, descAEFailed, descWatchers, descKeys, descBytes, descUnflushed, descProbes, descProbeBytes, descMemberEvents,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descInfo, 1, s.Node, s.Cluster, s.Region, s.Version)
	for _, ns := range c.labels.Namespaces {
		counter(descDeltasIn, s.DeltasIn[ns], ns)
		counter(descDeltasOut, s.DeltasOut[ns], ns)
		gauge(descKeys, float64(s.Keys[ns]), ns)
		gauge(descBytes, float64(s.Bytes[ns]), ns)
	}
	counter(descPubFailed, s.PublishFailed)
	counter(descMessagesOut, s.MessagesOut)
	counter(descBytesIn, uint64(max(s.BytesIn, 0)))
	counter(descBytesOut, uint64(max(s.BytesOut, 0)))
	for _, path := range c.labels.Paths {
		for _, reason := range c.labels.Reasons {
			counter(descRefused, s.Refused[path][reason], path, reason)
		}
	}
	var reasons []string
	for _, r := range slices.Concat(c.labels.MessageReasons, c.labels.Reasons, slices.Sorted(maps.Keys(s.Rejections))) {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	for _, r := range reasons {
		counter(descRejections, s.Rejections[r], r)
	}
	counter(descPeersRefused, s.PeersRefused)
	counter(descMDNSIgnored, s.MDNSIgnored)
	for _, k := range []string{"ping_sent", "ping_received", "pingreq_sent", "pingreq_received"} {
		counter(descProbes, s.Probes[k], k)
	}
	counter(descProbeBytes, s.ProbeBytesIn, "in")
	counter(descProbeBytes, s.ProbeBytesOut, "out")
	for _, k := range []string{"accusation", "refutation", "announcement", "closed_link"} {
		counter(descMemberEvents, s.MemberEvents[k], k)
	}
	for _, st := range c.labels.MemberStates {
		gauge(descMembers, float64(s.Members[st]), st)
	}
	gauge(descConnected, float64(s.Connected))
	gauge(descLeasesHeld, float64(s.LeasesHeld))
	counter(descLeasesGrant, s.Leases["granted"])
	counter(descLeasesDenied, s.Leases["denied"])
	counter(descLeasesLost, s.Leases["lost"])
	counter(descLeasesExpire, s.Leases["expired"])
	counter(descLeasesRel, s.Leases["released"])
	gauge(descSettle, s.SettleSecs)
	counter(descAERounds, s.AERounds)
	counter(descAERepaired, s.AERepaired)
	var aeRefused uint64
	for _, n := range s.Refused["anti-entropy"] {
		aeRefused += n
	}
	counter(descAERefused, aeRefused)
	counter(descAEFailed, s.AEFailed)
	gauge(descWatchers, float64(s.Watchers))
	gauge(descUnflushed, float64(s.Unflushed))
}
