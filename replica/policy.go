package replica

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rumor-dev/rumor/crdt"
)

// Reasons a delta or a gossip message is refused, as counted in `rumor
// status` and the metrics, whichever path it came by.
const (
	ReasonUndecodable = "undecodable"   // not an envelope
	ReasonVersion     = "version"       // an envelope version this build does not read
	ReasonLimit       = "limit"         // over a configured bound
	ReasonWrongTopic  = "wrong-topic"   // a key of another namespace than the topic's
	ReasonBadKey      = "bad-key"       // a malformed key
	ReasonBadOp       = "bad-op"        // an operation the namespace does not take
	ReasonBadValue    = "bad-value"     // a value the namespace does not take
	ReasonUnsigned    = "unsigned"      // no proof of who wrote it
	ReasonForged      = "forged-writer" // the proof does not verify for the writer it names
	ReasonNotOwner    = "not-owner"     // a write only the key's owner may make
	ReasonNotAllowed  = "not-allowed"   // a writer the configured policy leaves out (bl_writers, kv_writers)
	ReasonBadEpoch    = "bad-epoch"     // a lease epoch of 0 or past EpochCeiling
	ReasonClockSkew   = "clock-skew"    // stamped further ahead than max_skew
)

// Reasons lists every reason, so that counters can start at zero.
var Reasons = []string{
	ReasonUndecodable, ReasonVersion, ReasonLimit, ReasonWrongTopic, ReasonBadKey, ReasonBadOp,
	ReasonBadValue, ReasonUnsigned, ReasonForged, ReasonNotOwner, ReasonNotAllowed, ReasonBadEpoch,
	ReasonClockSkew,
}

// EpochCeiling is the highest fencing token a lease may take: 2^53 − 1,
// exact in every JSON reader, and more claims than a kernel can see. A
// record past it is refused, so no claim can make the next epoch
// overflow (a claim at 2^64 − 1 used to take a kernel from its holder and
// leave it unclaimable: the next epoch wrapped to 0, which every peer
// refuses).
//
// The bound is a pure function of the record, as the rest of the write
// policy: every agent judges a record the same way, whatever it holds. A
// bound relative to the last epoch an agent holds ("at most one more")
// cannot be: merges drop the records of superseded epochs at once, so an
// agent that missed two epochs (partitioned while a kernel changed hands
// twice) could never accept the current one, and would disagree about the
// holder for good. make chaos found exactly that.
const EpochCeiling = 1<<53 - 1

// Refusal is a delta (or a whole gossip message) that the replica refused,
// with the reason it is counted under. Ignore is set for a refusal that
// does not prove the sender dishonest (a stamp ahead of our clock, an epoch
// that a later exchange may make acceptable): gossip ignores such a
// message rather than rejecting it.
type Refusal struct {
	Reason string
	Ignore bool
	Err    error
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(reason, format string, args ...any) error {
	return &Refusal{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason err was refused under ("" if it is no
// Refusal).
func ReasonOf(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// Policy is the part of the write policy that the cluster configures: who
// may write blacklists (bl_writers) and which kv prefixes (kv_writers).
// Every agent should hold the same settings; the zero value allows every
// member.
type Policy struct {
	blWriters map[string]bool // nil: anyone may write bl
	kvWriters []kvRule        // longest prefix first
}

// kvRule lets only writers write the kv paths under prefix.
type kvRule struct {
	prefix  string
	writers map[string]bool
}

// NewPolicy returns the policy that lets only blWriters write blacklists
// (anyone, if it is empty) and, for each prefix of kvWriters, only its
// nodes write the kv paths under it. The longest prefix that matches a
// path decides; a path no prefix matches may be written by any member.
func NewPolicy(blWriters []string, kvWriters map[string][]string) Policy {
	var p Policy
	if len(blWriters) > 0 {
		p.blWriters = set(blWriters)
	}
	for prefix, ids := range kvWriters {
		p.kvWriters = append(p.kvWriters, kvRule{prefix: prefix, writers: set(ids)})
	}
	slices.SortFunc(p.kvWriters, func(a, b kvRule) int {
		if c := cmp.Compare(len(b.prefix), len(a.prefix)); c != 0 {
			return c
		}
		return strings.Compare(a.prefix, b.prefix)
	})
	return p
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// MayWrite reports whether node may write key, and if not, which setting
// leaves it out ("bl_writers", or "kv_writers <prefix>").
func (p Policy) MayWrite(key, node string) (ok bool, rule string) {
	switch crdt.NamespaceOf(key) {
	case crdt.NSBlacklist:
		if p.blWriters != nil && !p.blWriters[node] {
			return false, "bl_writers"
		}
	case crdt.NSKV:
		path := crdt.KVPath(key)
		for _, r := range p.kvWriters {
			if strings.HasPrefix(path, r.prefix) {
				if !r.writers[node] {
					return false, "kv_writers " + r.prefix
				}
				break
			}
		}
	}
	return true, ""
}

// check judges one delta whose writer (Stamp.Node) is verified: the rules
// of its namespace, the bound on a service's tags (lim), then the
// configured allowlists. It is pure, so every node judges a delta the same
// way.
func (p Policy) check(d crdt.Delta, lim Limits) error {
	if err := checkDelta(d, lim); err != nil {
		return err
	}
	if ok, rule := p.MayWrite(d.Key, d.Stamp.Node); !ok {
		return refuse(ReasonNotAllowed, "%s writes %q but is not in %s", d.Stamp.Node, d.Key, rule)
	}
	return nil
}

// checkDelta applies the namespaces' write rules to one delta, judged
// against its writer, Stamp.Node, whose signature the caller has verified
// (or which is this node, for a local write):
//
//   - The key must be well formed, in a known namespace.
//   - svc and bl: put or delete.
//   - node/<id>: put, by node id only (its member entry);
//     node/<target>/<accuser>: put, by accuser only (an accusation, with
//     the incarnation it accuses).
//   - task: anyone may queue (assign) or request cancellation; only the
//     task's owner moves it to running, done, failed or cancelled.
//   - kernel: claim, renew and release records, each the writer's own (the
//     holder of a record is its writer), a claim and a renewal expiring
//     after their stamp, an epoch from 1 to EpochCeiling.
//   - kv: put or delete, whose value holds a version of at least 1.
//   - wait/<kernel>/<node>.<session>: put (expiring after its stamp, with
//     its waiter's place) or delete, by that node only.
func checkDelta(d crdt.Delta, lim Limits) error {
	ns, author := crdt.NamespaceOf(d.Key), d.Stamp.Node
	if err := crdt.CheckKey(d.Key); err != nil {
		return refuse(ReasonBadKey, "%v", err)
	}
	if d.Stamp.HLC == 0 {
		return refuse(ReasonBadValue, "delta for %q has no stamp", d.Key)
	}
	switch ns {
	case crdt.NSService, crdt.NSBlacklist:
		if d.Op != crdt.OpPut && d.Op != crdt.OpDelete {
			return refuse(ReasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if ns == crdt.NSService && d.Op == crdt.OpPut {
			var v crdt.ServiceValue
			if err := crdt.Decode(d.Value, &v); err != nil || v.Status == "" {
				return refuse(ReasonBadValue, "service value for %q: status missing or undecodable", d.Key)
			}
			if err := lim.checkTags(d.Key, v); err != nil {
				return err
			}
		}
	case crdt.NSKV:
		if d.Op != crdt.OpPut && d.Op != crdt.OpDelete {
			return refuse(ReasonBadOp, "%s on %q", d.Op, d.Key)
		}
		var v crdt.KVValue
		if err := crdt.Decode(d.Value, &v); err != nil || v.Version == 0 {
			return refuse(ReasonBadValue, "kv value for %q: version missing or undecodable", d.Key)
		}
	case crdt.NSNode:
		if d.Op != crdt.OpPut {
			return refuse(ReasonBadOp, "%s on %q", d.Op, d.Key)
		}
		node, accuser, _ := crdt.SplitNodeKey(d.Key)
		if accuser == "" {
			if node != author {
				return refuse(ReasonNotOwner, "%s writes %q", author, d.Key)
			}
			break
		}
		if accuser != author {
			return refuse(ReasonNotOwner, "%s writes %q, an accusation by %s", author, d.Key, accuser)
		}
		var v crdt.SuspectValue
		if err := crdt.Decode(d.Value, &v); err != nil || v.Inc == 0 {
			return refuse(ReasonBadValue, "accusation %q: incarnation missing or undecodable", d.Key)
		}
	case crdt.NSTask:
		if d.Op != crdt.OpPut || !d.Task.Valid() {
			return refuse(ReasonBadOp, "%s (state %d) on %q", d.Op, d.Task, d.Key)
		}
		var v crdt.TaskValue
		if err := crdt.Decode(d.Value, &v); err != nil {
			return refuse(ReasonBadValue, "task value for %q: undecodable", d.Key)
		}
		// Only a task queued for a work queue has no owner yet.
		if v.Owner == "" && (d.Task != crdt.TaskQueued || v.Queue == "") {
			return refuse(ReasonBadValue, "task value for %q: owner missing", d.Key)
		}
		if v.Queue != "" {
			if err := crdt.CheckName("queue", v.Queue); err != nil {
				return refuse(ReasonBadValue, "task %q: %v", d.Key, err)
			}
		}
		if d.Task != crdt.TaskQueued && d.Task != crdt.TaskCancelRequested && v.Owner != author {
			return refuse(ReasonNotOwner, "%s sets task %q to %s but %s owns it", author, d.Key, d.Task, v.Owner)
		}
	case crdt.NSWait:
		if d.Op != crdt.OpPut && d.Op != crdt.OpDelete {
			return refuse(ReasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if node := crdt.WaitNode(d.Key); node != author {
			return refuse(ReasonNotOwner, "%s writes %q, a waiter of node %q", author, d.Key, node)
		}
		if d.Op == crdt.OpPut {
			var v crdt.WaitValue
			if err := crdt.Decode(d.Value, &v); err != nil || v.SinceMS <= 0 {
				return refuse(ReasonBadValue, "wait value for %q: since_ms missing or undecodable", d.Key)
			}
			if d.Expiry <= d.Stamp.HLC.WallMS() {
				return refuse(ReasonBadValue, "wait %q expires before its stamp", d.Key)
			}
		}
	case crdt.NSKernel:
		switch d.Op {
		case crdt.OpClaim, crdt.OpRenew:
			if d.Expiry <= d.Stamp.HLC.WallMS() {
				return refuse(ReasonBadValue, "%s on %q expires before its stamp", d.Op, d.Key)
			}
		case crdt.OpRelease:
		default:
			return refuse(ReasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if d.Epoch == 0 || d.Epoch > EpochCeiling {
			return refuse(ReasonBadEpoch, "%s on %q has epoch %d (1 to %d)", d.Op, d.Key, d.Epoch, uint64(EpochCeiling))
		}
	default:
		return refuse(ReasonBadKey, "unknown namespace %q", ns)
	}
	return nil
}
