package agent

import (
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func stampTime(s crdt.Stamp) time.Time { return msTime(s.HLC.WallMS()) }

// serviceView shows a service entry. While its owner is dead the entry
// reads "down" (a view derived from membership, not a write: when the owner
// returns its own entry stands again).
func (a *Agent) serviceView(d crdt.Delta, nowMS int64, owner membership.State) rpc.Service {
	parts := strings.SplitN(d.Key, "/", 3)
	var v crdt.ServiceValue
	_ = crdt.Decode(d.Value, &v)
	s := rpc.Service{
		Service: parts[1], Instance: parts[2], Addr: v.Addr, Status: v.Status, Tags: v.Tags,
		Owner: d.Stamp.Node, Updated: stampTime(d.Stamp), Expires: msTime(d.Expiry),
		Up: v.Status == "up" && d.Live(nowMS) && owner != membership.Dead, OwnerState: owner.String(),
		Origin: a.origin(d.Stamp, nowMS),
	}
	if owner == membership.Dead {
		s.Status, s.Reported = "down", v.Status
	}
	return s
}

func (a *Agent) blacklistView(d crdt.Delta) rpc.BlacklistEntry {
	parts := strings.SplitN(d.Key, "/", 3)
	var v crdt.BlacklistValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.BlacklistEntry{
		List: parts[1], ID: parts[2], Reason: v.Reason, AddedBy: d.Stamp.Node,
		Added: stampTime(d.Stamp), Expires: msTime(d.Expiry), Origin: a.origin(d.Stamp, a.nowMS()),
	}
}

func (a *Agent) taskView(d crdt.Delta) rpc.Task {
	var v crdt.TaskValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.Task{
		ID: crdt.LastSegment(d.Key), Owner: v.Owner, State: d.Task.String(), Result: v.Result,
		UpdatedBy: d.Stamp.Node, Updated: stampTime(d.Stamp), Origin: a.origin(d.Stamp, a.nowMS()),
	}
}

func (a *Agent) kernelView(l crdt.Lease, nowMS int64) rpc.Kernel {
	k := rpc.Kernel{ID: crdt.LastSegment(l.Kernel), Holder: l.Holder, Epoch: l.Epoch, Job: l.Job, Released: l.Released, Live: l.Live(nowMS)}
	if l.Holder != "" {
		k.Granted, k.Expires = stampTime(l.Granted), msTime(l.Expiry)
		last := l.Granted
		if l.Granted.Less(l.Renewed) {
			last = l.Renewed
		}
		k.Origin = a.origin(last, nowMS)
	}
	return k
}

// origin says who wrote a value stamped s, how long ago by this agent's
// clock, and how that node stands in this agent's membership view now.
func (a *Agent) origin(s crdt.Stamp, nowMS int64) rpc.Origin {
	return rpc.Origin{
		Origin: s.Node, Stamp: s.HLC.String(), AgeMillis: max(nowMS-s.HLC.WallMS(), 0),
		OriginState: a.mon.Table().State(s.Node).String(),
	}
}

func memberView(d crdt.Delta) rpc.Member {
	var v crdt.MemberValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.Member{Node: crdt.LastSegment(d.Key), Addrs: v.Addrs, Region: v.Region, Version: v.Version}
}

// eventValue is the current view of an entry, for watch events; nil when
// the entry is deleted or expired.
func (a *Agent) eventValue(e crdt.Entry, nowMS int64) any {
	w := e.Winner()
	switch crdt.NamespaceOf(e.Key) {
	case crdt.NSKernel:
		return a.kernelView(crdt.Resolve(e), nowMS)
	case crdt.NSTask:
		return a.taskView(w)
	case crdt.NSService:
		if w.Op == crdt.OpPut {
			return a.serviceView(w, nowMS, a.mon.Table().State(w.Stamp.Node))
		}
	case crdt.NSBlacklist:
		if w.Live(nowMS) {
			return a.blacklistView(w)
		}
	case crdt.NSNode:
		return memberView(w)
	}
	return nil
}
