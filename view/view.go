// Package view turns replicated state into what the local API shows: the
// rpc types of services, blacklist entries, tasks, kernels and members,
// with where each value came from and how stale it may be (its origin),
// and the explanation of why a key's value won. It reads nothing itself:
// the caller passes the entries, the time and how its failure detector
// sees each node.
package view

import (
	"fmt"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

// States tells how this agent's failure detector sees a node now.
type States func(node string) membership.State

// Time converts wall ms to a time (the zero time for 0).
func Time(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// StampTime is the wall time of a stamp.
func StampTime(s crdt.Stamp) time.Time { return Time(s.HLC.WallMS()) }

// Service shows a service entry whose owner stands as owner. While its
// owner is dead the entry reads "down" (a view derived from membership,
// not a write: when the owner returns its own entry stands again).
func Service(d crdt.Delta, nowMS int64, owner membership.State, states States) rpc.Service {
	parts := strings.SplitN(d.Key, "/", 3)
	var v crdt.ServiceValue
	_ = crdt.Decode(d.Value, &v)
	s := rpc.Service{
		Service: parts[1], Instance: parts[2], Addr: v.Addr, Status: v.Status, Tags: v.Tags,
		Owner: d.Stamp.Node, Updated: StampTime(d.Stamp), Expires: Time(d.Expiry),
		Up: v.Status == "up" && d.Live(nowMS) && owner != membership.Dead, OwnerState: owner.String(),
		Origin: Origin(d.Stamp, nowMS, states),
	}
	if owner == membership.Dead {
		s.Status, s.Reported = "down", v.Status
	}
	return s
}

// Blacklist shows a blacklist entry.
func Blacklist(d crdt.Delta, nowMS int64, states States) rpc.BlacklistEntry {
	parts := strings.SplitN(d.Key, "/", 3)
	var v crdt.BlacklistValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.BlacklistEntry{
		List: parts[1], ID: parts[2], Reason: v.Reason, AddedBy: d.Stamp.Node,
		Added: StampTime(d.Stamp), Expires: Time(d.Expiry), Origin: Origin(d.Stamp, nowMS, states),
	}
}

// KV shows one write to a kv key.
func KV(d crdt.Delta) rpc.KVEntry {
	var v crdt.KVValue
	_ = crdt.Decode(d.Value, &v) // the write policy admitted only decodable values
	return rpc.KVEntry{
		Key: crdt.KVPath(d.Key), Value: v.Value, Version: v.Version, Writer: d.Stamp.Node,
		Stamp: d.Stamp.HLC.String(), Updated: StampTime(d.Stamp), Expires: Time(d.Expiry),
		Deleted: d.Op == crdt.OpDelete,
	}
}

// KVHistory shows the writes to a kv key, newest first (as the store keeps
// them): the first is current if it is live at nowMS, and each other one
// that lost to a concurrent write is marked a conflict.
func KVHistory(ds []crdt.Delta, nowMS int64) []rpc.KVEntry {
	out := make([]rpc.KVEntry, 0, len(ds))
	for i, d := range ds {
		e := KV(d)
		if i == 0 {
			e.Current = d.Live(nowMS)
		} else {
			e.Conflict = crdt.KVConflict(ds[0], d)
		}
		out = append(out, e)
	}
	return out
}

// Task shows a task's current write.
func Task(d crdt.Delta, nowMS int64, states States) rpc.Task {
	var v crdt.TaskValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.Task{
		ID: crdt.LastSegment(d.Key), Owner: v.Owner, State: d.Task.String(), Result: v.Result,
		UpdatedBy: d.Stamp.Node, Updated: StampTime(d.Stamp), Origin: Origin(d.Stamp, nowMS, states),
		Queue: v.Queue, Payload: v.Payload, Priority: v.Priority, Attempt: v.Attempt, MaxAttempts: v.MaxAttempts, Epoch: v.Epoch,
	}
}

// Kernel shows a kernel's lease. A released lease has no expiry: it ended
// when it was released, whatever its last claim or renewal had asked.
func Kernel(l crdt.Lease, nowMS int64, states States) rpc.Kernel {
	k := rpc.Kernel{ID: crdt.LastSegment(l.Kernel), Holder: l.Holder, Epoch: l.Epoch, Job: l.Job, Released: l.Released, Live: l.Live(nowMS)}
	if l.Holder != "" {
		k.Granted = StampTime(l.Granted)
		if !l.Released {
			k.Expires = Time(l.Expiry)
		}
		last := l.Granted
		if l.Granted.Less(l.Renewed) {
			last = l.Renewed
		}
		k.Origin = Origin(last, nowMS, states)
	}
	return k
}

// Origin says who wrote a value stamped s, how long ago by this agent's
// clock, and how that node stands in this agent's membership view now.
func Origin(s crdt.Stamp, nowMS int64, states States) rpc.Origin {
	return rpc.Origin{
		Origin: s.Node, Stamp: s.HLC.String(), AgeMillis: max(nowMS-s.HLC.WallMS(), 0),
		OriginState: states(s.Node).String(),
	}
}

// Member shows a node's heartbeat (what it says about itself).
func Member(d crdt.Delta) rpc.Member {
	var v crdt.MemberValue
	_ = crdt.Decode(d.Value, &v)
	return rpc.Member{Node: crdt.LastSegment(d.Key), Addrs: v.Addrs, Region: v.Region, Version: v.Version}
}

// Event is the current view of an entry, for watch events; nil when the
// entry is deleted or expired.
func Event(e crdt.Entry, nowMS int64, states States) any {
	w := e.Winner()
	switch crdt.NamespaceOf(e.Key) {
	case crdt.NSKernel:
		return Kernel(crdt.Resolve(e), nowMS, states)
	case crdt.NSTask:
		return Task(w, nowMS, states)
	case crdt.NSService:
		if w.Op == crdt.OpPut {
			return Service(w, nowMS, states(w.Stamp.Node), states)
		}
	case crdt.NSBlacklist:
		if w.Live(nowMS) {
			return Blacklist(w, nowMS, states)
		}
	case crdt.NSNode:
		return Member(w)
	case crdt.NSKV:
		if w.Live(nowMS) {
			return KV(w)
		}
	case crdt.NSWait:
		if w.Live(nowMS) {
			return Waiter(w)
		}
	}
	return nil
}

// Waiter shows a wait entry's winning write, a put.
func Waiter(d crdt.Delta) rpc.Waiter {
	var v crdt.WaitValue
	_ = crdt.Decode(d.Value, &v) // the write policy admitted only decodable values
	_, session, _ := strings.Cut(crdt.LastSegment(d.Key), ".")
	return rpc.Waiter{Node: d.Stamp.Node, Session: session, Since: Time(v.SinceMS), Job: v.Job}
}

// Record shows one stored write.
func Record(d crdt.Delta) rpc.Record {
	r := rpc.Record{
		Key: d.Key, Op: d.Op.String(), Node: d.Stamp.Node,
		HLC: uint64(d.Stamp.HLC), Stamp: d.Stamp.HLC.String(),
		Epoch: d.Epoch, ExpiryMillis: d.Expiry, Value: d.Value,
	}
	if crdt.NamespaceOf(d.Key) == crdt.NSTask {
		r.Task = d.Task.String()
	}
	return r
}

// Explain says which rule made e's value win: for a register, the winning
// write and lost, the recent writes it beat; for a kernel, every lease
// record the entry holds (those that can still matter) with what the lease
// rule made of it.
func Explain(e crdt.Entry, lost []crdt.Delta, nowMS int64) rpc.Explanation {
	ns := crdt.NamespaceOf(e.Key)
	out := rpc.Explanation{Key: e.Key, Rule: crdt.Rule(ns)}
	if crdt.IsSet(ns) {
		explainLease(e, nowMS, &out)
		return out
	}
	w := e.Winner()
	out.Verdict = fmt.Sprintf("%s by %s at %s", w.Op, w.Stamp.Node, w.Stamp.HLC)
	why := "the only write this agent holds for the key"
	if len(lost) > 0 {
		why = "beats every write below"
	}
	out.Records = []rpc.ExplainedRecord{{Record: Record(w), Why: why}}
	for _, d := range lost {
		why := "lost: " + crdt.Why(w, d)
		if crdt.KVConflict(w, d) {
			why = fmt.Sprintf("conflict: lost to a concurrent write whose writer never saw it (version %d against %d): %s",
				crdt.KVVersion(w), crdt.KVVersion(d), crdt.Why(w, d))
		}
		out.Superseded = append(out.Superseded, rpc.ExplainedRecord{Record: Record(d), Why: why})
	}
	return out
}

// explainLease fills out for a kernel entry.
func explainLease(e crdt.Entry, nowMS int64, out *rpc.Explanation) {
	l := crdt.Resolve(e)
	switch {
	case l.Holder == "":
		out.Verdict = "no claim has won"
	case l.Released:
		out.Verdict = fmt.Sprintf("released by %s (epoch %d)", l.Holder, l.Epoch)
	case l.Live(nowMS):
		out.Verdict = fmt.Sprintf("held by %s (epoch %d) until %s", l.Holder, l.Epoch, time.UnixMilli(l.Expiry).UTC().Format(time.RFC3339Nano))
	default:
		out.Verdict = fmt.Sprintf("expired: last held by %s (epoch %d)", l.Holder, l.Epoch)
	}
	claims := map[crdt.Stamp]crdt.ClaimVerdict{}
	for _, v := range crdt.ExplainLease(e) {
		claims[v.Claim.Stamp] = v
	}
	for _, d := range e.Deltas {
		why := ""
		switch d.Op {
		case crdt.OpClaim:
			why = claims[d.Stamp].Reason
		case crdt.OpRenew, crdt.OpRelease:
			switch {
			case d.Stamp.Node == l.Holder && d.Epoch == l.Epoch:
				why = fmt.Sprintf("%s of the winning lease (epoch %d)", d.Op, d.Epoch)
				if d.Stamp == l.Renewed {
					why += "; it gave the expiry"
				}
			default:
				why = fmt.Sprintf("%s of %s's epoch %d, not the current lease", d.Op, d.Stamp.Node, d.Epoch)
			}
		}
		out.Records = append(out.Records, rpc.ExplainedRecord{Record: Record(d), Why: why})
	}
}
