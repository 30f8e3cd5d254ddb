package crdt

import "fmt"

// Rule describes, in one sentence, how writes to a key of namespace ns are
// ordered (what `rumor explain` prints as the rule).
func Rule(ns Namespace) string {
	switch ns {
	case NSBlacklist:
		return "last writer wins by hybrid logical clock; at an equal clock a remove beats an add; then the higher node id"
	case NSTask:
		return "the higher state wins (queued < running < cancel-requested < done/failed/cancelled); within a state, last writer wins by hybrid logical clock, then node id"
	case NSKernel:
		return "lease records form a set; a claim counts if it expires after its own stamp; the highest epoch among counting claims wins (epochs never go backwards), and in that epoch the earliest claim; the winner's own renewals and releases of its epoch count whatever their stamps, the greatest expiry standing; records that can no longer matter are dropped"
	case NSService, NSNode, NSWait, NSKV:
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

// ExplainLease says, for each claim of a kernel entry, whether it won the
// lease and why (not). The claim with Won set is the one Resolve picks.
// Entry.Apply keeps only claims that can still matter (see pruneRecords),
// so a claim of an epoch below the winning one shows only in an entry
// built otherwise.
func ExplainLease(e Entry) []ClaimVerdict {
	wi := winningClaim(e.Deltas)
	var out []ClaimVerdict
	for i, d := range e.Deltas {
		if d.Op != OpClaim {
			continue
		}
		v := ClaimVerdict{Claim: d}
		switch {
		case !counts(d):
			v.Reason = "never eligible: it expires before its own stamp"
		case i == wi:
			v.Won = true
			v.Reason = fmt.Sprintf("won epoch %d: the first claim of the highest epoch", d.Epoch)
		case d.Epoch == e.Deltas[wi].Epoch:
			w := e.Deltas[wi]
			v.Reason = fmt.Sprintf("epoch %d went to the earlier claim of %s at %s", w.Epoch, w.Stamp.Node, w.Stamp.HLC)
		default:
			v.Reason = fmt.Sprintf("superseded: epoch %d was claimed and a higher epoch wins", e.Deltas[wi].Epoch)
		}
		out = append(out, v)
	}
	return out
}
