package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/version"
	"github.com/rumor-dev/rumor/view"
)

// Status implements rpc.API.
func (a *Agent) Status(context.Context) (rpc.Status, error) {
	paths := a.rep.Counters()
	var in uint64
	for _, n := range a.rep.AppliedIn() {
		in += n
	}
	out, _, _ := a.rep.Published()
	var sent uint64
	for _, n := range out {
		sent += n
	}
	ae := a.sync.Counters()
	var aeRefused uint64
	for _, n := range paths[replica.AntiEntropy].Refused {
		aeRefused += n
	}
	refused := map[string]map[string]uint64{}
	for src, pc := range paths {
		for reason, n := range pc.Refused {
			if n > 0 {
				if refused[src.String()] == nil {
					refused[src.String()] = map[string]uint64{}
				}
				refused[src.String()][reason] = n
			}
		}
	}
	build := version.Get()
	return rpc.Status{
		Node: a.self, Cluster: a.cfg.Cluster, Region: a.cfg.Region, Version: Version, Commit: build.Commit, Modified: build.Modified,
		Addrs: a.node.Addrs(), Peers: len(a.node.Peers()), Keys: a.store.Len(),
		Watchers: a.store.Watchers(), Unflushed: a.store.Unflushed(), DeltasIn: in, DeltasOut: sent,
		Rejected: a.node.Rejections(), Refused: refused, PeersRefused: a.node.Refused(), Started: a.started.UTC(),
		AntiEntropy: rpc.AntiEntropyStats{Rounds: ae.Rounds, Repaired: ae.Repaired, Refused: aeRefused, Failed: ae.Failed},
		Lag:         a.lag.Report(),
	}, nil
}

// Members implements rpc.API: every node heard on node/, with its
// services and live leases counted.
func (a *Agent) Members(context.Context) ([]rpc.Member, error) {
	now := a.nowMS()
	connected := make(map[string]bool)
	for _, p := range a.node.Peers() {
		connected[p.String()] = true
	}
	services, leases := make(map[string]int), make(map[string]int)
	for _, e := range a.store.List("svc/") {
		if w := e.Winner(); w.Live(now) {
			services[w.Stamp.Node]++
		}
	}
	for _, e := range a.store.List("kernel/") {
		if l := crdt.Resolve(e); l.Live(now) {
			leases[l.Holder]++
		}
	}
	table := a.mon.Table()
	heard := make(map[string]int64)
	for _, p := range table.Peers() {
		heard[p.ID] = p.Heard
	}
	heard[a.self] = now
	var out []rpc.Member
	for _, e := range a.store.List("node/") {
		if !crdt.IsMemberKey(e.Key) {
			continue // an accusation
		}
		m := view.Member(e.Winner())
		m.Self, m.Connected = m.Node == a.self, connected[m.Node]
		m.Services, m.Leases = services[m.Node], leases[m.Node]
		m.State, m.LastHeard = table.State(m.Node).String(), view.Time(heard[m.Node])
		if id, err := peer.Decode(m.Node); err == nil {
			m.Found = string(a.node.Found(id))
		}
		out = append(out, m)
	}
	return out, nil
}

func ttlMS(ms int64, what string) (int64, error) {
	if ms < 0 {
		return 0, rpc.BadRequest("%s must not be negative", what)
	}
	return ms, nil
}

func badName(what, s string) error {
	if err := crdt.CheckName(what, s); err != nil {
		return rpc.BadRequest("%v", err)
	}
	return nil
}

// ownerDead reports whether the failure detector holds node dead.
func (a *Agent) ownerDead(node string) bool { return a.mon.Table().State(node) == membership.Dead }

// ServiceSet implements rpc.API. An instance belongs to the node that wrote
// it: setting one that another node holds live is denied.
func (a *Agent) ServiceSet(_ context.Context, service, instance string, req rpc.ServiceSet) (rpc.Service, error) {
	if err := errors.Join(badName("service", service), badName("instance", instance), badName("status", req.Status)); err != nil {
		return rpc.Service{}, err
	}
	ttl, err := ttlMS(req.TTLMillis, "ttl")
	if err != nil {
		return rpc.Service{}, err
	}
	key := crdt.ServiceKey(service, instance)
	now := a.nowMS()
	if e, ok := a.store.Get(key); ok {
		if w := e.Winner(); w.Live(now) && w.Stamp.Node != a.self && !a.ownerDead(w.Stamp.Node) {
			return rpc.Service{}, rpc.Denied("service %s/%s is owned by node %s", service, instance, w.Stamp.Node)
		}
	}
	d := crdt.Delta{Key: key, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags})}
	if ttl > 0 {
		d.Expiry = now + ttl
	}
	d, _, err = a.write(d)
	if err != nil {
		return rpc.Service{}, err
	}
	return a.serviceView(d, now, membership.Alive), nil
}

// ServiceDelete implements rpc.API.
func (a *Agent) ServiceDelete(_ context.Context, service, instance string) error {
	if err := errors.Join(badName("service", service), badName("instance", instance)); err != nil {
		return err
	}
	key := crdt.ServiceKey(service, instance)
	e, ok := a.store.Get(key)
	if !ok || e.Winner().Op != crdt.OpPut {
		return rpc.NotFound("no service %s/%s", service, instance)
	}
	if w := e.Winner(); w.Stamp.Node != a.self && w.Live(a.nowMS()) {
		return rpc.Denied("service %s/%s is owned by node %s", service, instance, w.Stamp.Node)
	}
	_, _, err := a.write(crdt.Delta{Key: key, Op: crdt.OpDelete})
	return err
}

// ServiceGet implements rpc.API.
func (a *Agent) ServiceGet(_ context.Context, service, instance string) (rpc.Service, error) {
	now := a.nowMS()
	e, ok := a.store.Get(crdt.ServiceKey(service, instance))
	if !ok || !e.Winner().Live(now) {
		return rpc.Service{}, rpc.NotFound("no service %s/%s", service, instance)
	}
	return a.serviceView(e.Winner(), now, a.mon.Table().State(e.Winner().Stamp.Node)), nil
}

// ServiceList implements rpc.API.
func (a *Agent) ServiceList(_ context.Context, service string, upOnly bool) ([]rpc.Service, error) {
	prefix := "svc/"
	if service != "" {
		prefix += service + "/"
	}
	now := a.nowMS()
	out := []rpc.Service{}
	for _, e := range a.store.List(prefix) {
		if w := e.Winner(); w.Live(now) {
			if v := a.serviceView(w, now, a.mon.Table().State(w.Stamp.Node)); v.Up || !upOnly {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// BlacklistAdd implements rpc.API.
func (a *Agent) BlacklistAdd(_ context.Context, list, id string, req rpc.BlacklistAdd) (rpc.BlacklistEntry, error) {
	if err := errors.Join(badName("list", list), badName("id", id)); err != nil {
		return rpc.BlacklistEntry{}, err
	}
	if err := a.checkBLWriter(); err != nil {
		return rpc.BlacklistEntry{}, err
	}
	ttl, err := ttlMS(req.TTLMillis, "ttl")
	if err != nil {
		return rpc.BlacklistEntry{}, err
	}
	d := crdt.Delta{Key: crdt.BlacklistKey(list, id), Op: crdt.OpPut, Value: crdt.Encode(crdt.BlacklistValue{Reason: req.Reason})}
	if ttl > 0 {
		d.Expiry = a.nowMS() + ttl
	}
	d, _, err = a.write(d)
	return a.blacklistView(d), err
}

// BlacklistRemove implements rpc.API. Removing an id that is not listed
// still records the removal, so it wins over a concurrent add elsewhere
// with an earlier stamp.
func (a *Agent) BlacklistRemove(_ context.Context, list, id string) error {
	if err := errors.Join(badName("list", list), badName("id", id)); err != nil {
		return err
	}
	if err := a.checkBLWriter(); err != nil {
		return err
	}
	_, _, err := a.write(crdt.Delta{Key: crdt.BlacklistKey(list, id), Op: crdt.OpDelete})
	return err
}

// checkBLWriter refuses a blacklist write on a node that bl_writers leaves
// out: every other agent would reject it.
func (a *Agent) checkBLWriter() error {
	if ok, _ := a.rep.Policy().MayWrite(crdt.BlacklistKey("x", "x"), a.self); !ok {
		return rpc.Denied("this node (%s) is not in bl_writers: only the nodes listed there may change blacklists", a.self)
	}
	return nil
}

// BlacklistHas implements rpc.API.
func (a *Agent) BlacklistHas(_ context.Context, list, id string) (rpc.BlacklistEntry, bool, error) {
	if err := errors.Join(badName("list", list), badName("id", id)); err != nil {
		return rpc.BlacklistEntry{}, false, err
	}
	e, ok := a.store.Get(crdt.BlacklistKey(list, id))
	if !ok || !e.Winner().Live(a.nowMS()) {
		return rpc.BlacklistEntry{List: list, ID: id}, false, nil
	}
	return a.blacklistView(e.Winner()), true, nil
}

// BlacklistLists implements rpc.API: the lists with a live id, by name.
func (a *Agent) BlacklistLists(context.Context) ([]rpc.BlacklistSummary, error) {
	now := a.nowMS()
	counts := map[string]int{}
	for _, e := range a.store.ListUnordered("bl/") {
		if e.Winner().Live(now) {
			counts[strings.SplitN(e.Key, "/", 3)[1]]++
		}
	}
	out := []rpc.BlacklistSummary{}
	for _, l := range slices.Sorted(maps.Keys(counts)) {
		out = append(out, rpc.BlacklistSummary{List: l, Entries: counts[l]})
	}
	return out, nil
}

// BlacklistList implements rpc.API.
func (a *Agent) BlacklistList(_ context.Context, list string) ([]rpc.BlacklistEntry, error) {
	if err := badName("list", list); err != nil {
		return nil, err
	}
	now := a.nowMS()
	out := []rpc.BlacklistEntry{}
	for _, e := range a.store.List("bl/" + list + "/") {
		if w := e.Winner(); w.Live(now) {
			out = append(out, a.blacklistView(w))
		}
	}
	return out, nil
}
