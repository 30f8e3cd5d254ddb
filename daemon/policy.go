package daemon

import (
	"fmt"

	"github.com/rumor-dev/rumor/crdt"
)

// Rejection reasons, as counted in `rumor status` and metrics.
const (
	reasonUndecodable  = "undecodable"
	reasonVersion      = "version"
	reasonLimit        = "limit"
	reasonWrongTopic   = "wrong-topic"
	reasonBadKey       = "bad-key"
	reasonBadOp        = "bad-op"
	reasonBadValue     = "bad-value"
	reasonForgedWriter = "forged-writer"
	reasonNotOwner     = "not-owner"
	reasonClockSkew    = "clock-skew"
	reasonNotAllowed   = "not-allowed"
)

// policy is the part of the write policy that the cluster configures:
// who may write which namespace (bl_writers). Every agent should hold the
// same settings; the zero value allows every member.
type policy struct {
	blWriters map[string]bool // nil: anyone may write bl
}

// newPolicy builds the configured policy from a validated config.
func newPolicy(cfg Config) policy {
	var p policy
	if len(cfg.BLWriters) > 0 {
		p.blWriters = make(map[string]bool, len(cfg.BLWriters))
		for _, id := range cfg.BLWriters {
			p.blWriters[id] = true
		}
	}
	return p
}

// mayWrite reports whether node may write keys of namespace ns.
func (p policy) mayWrite(ns crdt.Namespace, node string) bool {
	return ns != crdt.NSBlacklist || p.blWriters == nil || p.blWriters[node]
}

// check is checkDelta followed by the configured writer allowlists; like
// checkDelta it is pure.
func (p policy) check(ns crdt.Namespace, d crdt.Delta, author string) error {
	if err := checkDelta(ns, d, author); err != nil {
		return err
	}
	if !p.mayWrite(ns, author) {
		return refuse(reasonNotAllowed, "%s writes %q but is not in bl_writers", author, d.Key)
	}
	return nil
}

// policyError is a delta that the write policy refuses, with the reason it
// is counted under.
type policyError struct {
	reason string
	err    error
}

func (e *policyError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *policyError) Unwrap() error { return e.err }

func refuse(reason, format string, args ...any) error {
	return &policyError{reason: reason, err: fmt.Errorf(format, args...)}
}

// checkDelta applies the cluster's write policy to one delta that arrived
// on topic ns, signed by author. It is pure, so every node judges a delta
// the same way.
//
//   - The delta's key must belong to the topic's namespace and be well formed.
//   - Its writer (stamp node) must be the message's signer: nobody writes in
//     another node's name.
//   - svc and node entries: put/delete by their writer; node/<id> only by id.
//   - task: anyone may queue (assign) or request cancellation; only the
//     task's owner moves it to running, done, failed or cancelled.
//   - kernel: claim/renew/release records, each the writer's own (the holder
//     of a record is its writer), with an expiry after its stamp.
func checkDelta(ns crdt.Namespace, d crdt.Delta, author string) error {
	if crdt.NamespaceOf(d.Key) != ns {
		return refuse(reasonWrongTopic, "key %q on topic %q", d.Key, ns)
	}
	if err := checkKey(d.Key); err != nil {
		return refuse(reasonBadKey, "%v", err)
	}
	if d.Stamp.Node != author {
		return refuse(reasonForgedWriter, "delta for %q names writer %s but is signed by %s", d.Key, d.Stamp.Node, author)
	}
	if d.Stamp.HLC == 0 {
		return refuse(reasonBadValue, "delta for %q has no stamp", d.Key)
	}
	switch ns {
	case crdt.NSService, crdt.NSBlacklist:
		if d.Op != crdt.OpPut && d.Op != crdt.OpDelete {
			return refuse(reasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if ns == crdt.NSService && d.Op == crdt.OpPut {
			var v crdt.ServiceValue
			if err := crdt.Decode(d.Value, &v); err != nil || v.Status == "" {
				return refuse(reasonBadValue, "service value for %q: status missing or undecodable", d.Key)
			}
		}
	case crdt.NSNode:
		if d.Op != crdt.OpPut {
			return refuse(reasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if lastSegment(d.Key) != author {
			return refuse(reasonNotOwner, "%s writes %q", author, d.Key)
		}
	case crdt.NSTask:
		if d.Op != crdt.OpPut || !d.Task.Valid() {
			return refuse(reasonBadOp, "%s (state %d) on %q", d.Op, d.Task, d.Key)
		}
		var v crdt.TaskValue
		if err := crdt.Decode(d.Value, &v); err != nil || v.Owner == "" {
			return refuse(reasonBadValue, "task value for %q: owner missing or undecodable", d.Key)
		}
		if d.Task != crdt.TaskQueued && d.Task != crdt.TaskCancelRequested && v.Owner != author {
			return refuse(reasonNotOwner, "%s sets task %q to %s but %s owns it", author, d.Key, d.Task, v.Owner)
		}
	case crdt.NSKernel:
		switch d.Op {
		case crdt.OpClaim, crdt.OpRenew:
			if d.Expiry <= d.Stamp.HLC.WallMS() {
				return refuse(reasonBadValue, "%s on %q expires before its stamp", d.Op, d.Key)
			}
		case crdt.OpRelease:
		default:
			return refuse(reasonBadOp, "%s on %q", d.Op, d.Key)
		}
		if d.Epoch == 0 {
			return refuse(reasonBadValue, "%s on %q has epoch 0", d.Op, d.Key)
		}
	default:
		return refuse(reasonWrongTopic, "unknown namespace %q", ns)
	}
	return nil
}
