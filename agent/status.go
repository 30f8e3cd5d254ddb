package agent

import (
	"context"
	"strings"

	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/obs"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
)

// listenMetrics binds metrics_addr for /metrics and the status page (none
// when it is empty).
func (a *Agent) listenMetrics() error {
	if a.cfg.MetricsAddr == "" {
		return nil
	}
	srv, err := obs.Listen(a.cfg.MetricsAddr, obs.NewRegistry(a.snapshot, metricLabels(), a.lag), func(ctx context.Context) (any, error) { return a.pageStatus(ctx) }, a.log)
	if err != nil {
		return err
	}
	a.metrics = srv
	return nil
}

// metricLabels returns every label value the agent's metrics know in
// advance, so that each of their series shows from the first scrape, at 0.
func metricLabels() obs.Labels {
	labels := obs.Labels{Reasons: replica.Reasons, MessageReasons: gossip.Reasons}
	for _, ns := range crdt.Namespaces {
		labels.Namespaces = append(labels.Namespaces, string(ns))
	}
	for _, s := range replica.Sources {
		labels.Paths = append(labels.Paths, s.String())
	}
	for _, s := range []membership.State{membership.Alive, membership.Suspect, membership.Dead} {
		labels.MemberStates = append(labels.MemberStates, s.String())
	}
	return labels
}

// snapshot reads the agent's counters for a metrics scrape.
func (a *Agent) snapshot() obs.Snapshot {
	c := a.kernels.Counts()
	s := obs.Snapshot{
		Node: a.self, Cluster: a.cfg.Cluster, Region: a.cfg.Region, Version: Version,
		DeltasIn: map[string]uint64{}, DeltasOut: map[string]uint64{}, Refused: map[string]map[string]uint64{},
		Rejections: a.node.Rejections(), PeersRefused: a.node.Refused(), MDNSIgnored: a.node.MDNSIgnored(), Members: map[string]int{},
		Connected: len(a.node.Peers()), LeasesHeld: a.kernels.Held(), SettleSecs: a.kernels.SettleWindow().Seconds(),
		Watchers: a.store.Watchers(), Unflushed: a.store.Unflushed(), Keys: map[string]int{}, Bytes: map[string]int64{},
		Leases: map[string]uint64{
			"granted": c.Granted, "denied": c.Denied, "lost": c.Lost,
			"expired": c.Expired, "released": c.Released,
		},
	}
	in := a.rep.AppliedIn()
	out, messages, failed := a.rep.Published()
	usage := a.store.Usage()
	for i, ns := range crdt.Namespaces {
		s.DeltasIn[string(ns)], s.DeltasOut[string(ns)] = in[i], out[i]
		s.Keys[string(ns)], s.Bytes[string(ns)] = usage[ns].Keys, usage[ns].Bytes
	}
	s.MessagesOut, s.PublishFailed = messages, failed
	s.BytesIn, s.BytesOut = a.node.Bandwidth()
	for src, pc := range a.rep.Counters() {
		s.Refused[src.String()] = pc.Refused
	}
	for st, n := range a.mon.Table().Count() {
		s.Members[st.String()] = n
	}
	ae := a.sync.Counters()
	s.AERounds, s.AERepaired, s.AEFailed = ae.Rounds, ae.Repaired, ae.Failed
	mc := a.mon.Counters()
	s.Probes = map[string]uint64{"ping_sent": mc.ProbesSent, "ping_received": mc.ProbesReceived, "pingreq_sent": mc.PingReqsSent, "pingreq_received": mc.PingReqsReceived}
	s.ProbeBytesIn, s.ProbeBytesOut = mc.BytesReceived, mc.BytesSent
	s.MemberEvents = map[string]uint64{"accusation": mc.Accusations, "refutation": mc.Refutations, "announcement": mc.Announcements, "closed_link": mc.ClosedLinks}
	return s
}

// pageStatus is /status.json, the data of the status page.
type pageStatus struct {
	Time          time.Time      `json:"time"`
	Status        rpc.Status     `json:"status"`
	Members       []rpc.Member   `json:"members"`
	Services      []rpc.Service  `json:"services"`
	Kernels       []rpc.Kernel   `json:"kernels"`
	Tasks         []rpc.Task     `json:"tasks"`
	Blacklists    map[string]int `json:"blacklists"` // live ids per list
	Lag           obs.Histogram  `json:"lag"`
	Settle        float64        `json:"settle_ms"`
	ServiceStates map[string]int `json:"services_by_status"`
}

func (a *Agent) pageStatus(ctx context.Context) (pageStatus, error) {
	p := pageStatus{Time: a.clock.Now().UTC(), Blacklists: make(map[string]int), ServiceStates: make(map[string]int)}
	var err error
	if p.Status, err = a.Status(ctx); err != nil {
		return p, err
	}
	if p.Members, err = a.Members(ctx); err != nil {
		return p, err
	}
	if p.Services, err = a.ServiceList(ctx, "", false); err != nil {
		return p, err
	}
	if p.Kernels, err = a.KernelList(ctx); err != nil {
		return p, err
	}
	if p.Tasks, err = a.TaskList(ctx, rpc.TaskFilter{}); err != nil {
		return p, err
	}
	for _, s := range p.Services {
		p.ServiceStates[s.Status]++
	}
	now := a.nowMS()
	for _, e := range a.store.List("bl/") {
		if e.Winner().Live(now) {
			p.Blacklists[strings.SplitN(e.Key, "/", 3)[1]]++
		}
	}
	p.Lag = a.lag.Histogram()
	p.Settle = float64(a.kernels.SettleWindow().Microseconds()) / 1000
	return p, nil
}
