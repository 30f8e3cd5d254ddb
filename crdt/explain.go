package crdt

import (
	"cmp"
	"fmt"
	"slices"
)

// Rule describes, in one sentence, how writes to a key of namespace ns are
// ordered (what `rumor explain` prints as the rule).
func Rule(ns Namespace) string {
	switch ns {
	case NSBlacklist:
		return "last writer wins by hybrid logical clock; at an equal clock a remove beats an add; then the higher node id"
	case NSTask:
		return "the higher state wins (queued < running < cancel-requested < done/failed/cancelled); within a state, last writer wins by hybrid logical clock, then node id"
	case NSKernel:
		return "lease records form a set; the highest epoch claimed wins (epochs never go backwards), and in that epoch the earliest claim; renewals and releases count for the winning claim's holder and epoch"
	case NSService, NSNode:
		return "last writer wins by hybrid logical clock, then the higher node id"
	}
	return "unknown namespace"
}

// Why says by which rule register write a beats write b of the same key.
// It expects a to win (a merge of the two keeps a); if b wins instead it
// says so.
func Why(a, b Delta) string {
	ns := NamespaceOf(a.Key)
	if compareWrites(ns, a, b) < 0 {
		return "it loses: " + Why(b, a)
	}
	if a.Equal(b) {
		return "the same write"
	}
	if ns == NSTask && a.Task.rank() != b.Task.rank() {
		return fmt.Sprintf("state %s ranks above %s", a.Task, b.Task)
	}
	if a.Stamp.HLC != b.Stamp.HLC {
		return fmt.Sprintf("later clock (%s > %s)", a.Stamp.HLC, b.Stamp.HLC)
	}
	if ns == NSBlacklist && (a.Op == OpDelete) != (b.Op == OpDelete) {
		return fmt.Sprintf("same clock %s: remove wins", a.Stamp.HLC)
	}
	if a.Stamp.Node != b.Stamp.Node {
		return fmt.Sprintf("same clock %s: higher node id", a.Stamp.HLC)
	}
	return "same stamp: ordered by content"
}

// ClaimVerdict is what the lease rule made of one claim record.
type ClaimVerdict struct {
	Claim Delta
	// Won is true for the claim that holds (or last held) the kernel.
	Won bool
	// Reason says why, in words.
	Reason string
}

// ExplainLease replays Resolve over a kernel entry's claims and says, for
// each, whether it won and why (not). The claim with Won set is
// the one Resolve picks.
func ExplainLease(e Entry) []ClaimVerdict {
	var claims []Delta
	var out []ClaimVerdict
	for _, d := range e.Deltas {
		if d.Op != OpClaim {
			continue
		}
		if d.Expiry <= d.Stamp.HLC.WallMS() {
			out = append(out, ClaimVerdict{Claim: d, Reason: "never eligible: it expires before its own stamp"})
			continue
		}
		claims = append(claims, d)
	}
	slices.SortFunc(claims, func(a, b Delta) int {
		if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
			return c
		}
		return compareRecords(a, b)
	})
	cur := -1 // index in out of the current winner
	for _, c := range claims {
		if cur >= 0 {
			w := out[cur].Claim
			if c.Epoch <= w.Epoch {
				out = append(out, ClaimVerdict{Claim: c, Reason: fmt.Sprintf("epoch %d went to the earlier claim of %s at %s", w.Epoch, w.Stamp.Node, w.Stamp.HLC)})
				continue
			}
			out[cur].Won = false
			how := "was still live: superseded across a partition"
			switch {
			case releasedBefore(e.Deltas, w, c.Stamp):
				how = "was released"
			case endedBefore(e.Deltas, w, c.Stamp):
				how = "had expired"
			}
			out[cur].Reason = fmt.Sprintf("won epoch %d; epoch %d was claimed later and a higher epoch wins (the lease %s at that claim's stamp)", w.Epoch, c.Epoch, how)
		}
		reason := fmt.Sprintf("won epoch %d: the earliest claim of the highest epoch", c.Epoch)
		if cur < 0 {
			reason = fmt.Sprintf("won epoch %d: the first claim", c.Epoch)
		}
		out = append(out, ClaimVerdict{Claim: c, Won: true, Reason: reason})
		cur = len(out) - 1
	}
	return out
}
