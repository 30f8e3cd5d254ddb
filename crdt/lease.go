package crdt

import (
	"cmp"
	"slices"
)

// Lease is the outcome of a kernel's lease records: who won the latest
// epoch, until when, and whether it was released.
type Lease struct {
	Kernel string
	// Holder is the node that holds (or last held) the kernel; "" if no
	// claim has ever won.
	Holder string
	// Epoch is the fencing token of the winning claim.
	Epoch uint64
	// Granted is the winning claim's stamp.
	Granted Stamp
	// Expiry is the effective expiry in wall ms: the claim's, extended by
	// every renewal stamped before the expiry then in force.
	Expiry int64
	// Released is true once the holder released this epoch.
	Released bool
	// Renewed is the stamp of the last renewal that counted (zero if none).
	Renewed Stamp
	// Job is the claim's job label.
	Job string
	// MaxEpoch is the highest epoch named by any record; a new claim takes
	// MaxEpoch+1.
	MaxEpoch uint64
}

// Live reports whether the lease is held at nowMS.
func (l Lease) Live(nowMS int64) bool {
	return l.Holder != "" && !l.Released && nowMS < l.Expiry
}

// Resolve computes the lease of a kernel entry from its records. It is a
// pure function of the set of records, so every node holding the same
// records reaches the same verdict. The rule (DESIGN.md, kernel leases, as
// amended in the README):
//
//   - The highest epoch claimed wins, so the epoch a kernel shows never goes
//     backwards and a fencing token, once seen, is never undercut. Within
//     that epoch the claim with the smallest stamp wins: first come, first
//     served. A claim whose expiry is not after its own stamp never counts.
//   - An agent claims epoch MaxEpoch+1 only when it sees the lease released
//     or expired (past expiry plus max_skew), so a higher epoch supersedes a
//     live lease only when the claimant could not see it renewed: across a
//     partition. After the heal the newer epoch wins and the old holder's
//     agent reports "lost".
//   - Renewals and releases count only when they come from the winner's
//     holder for the winner's epoch and are stamped after the claim; a
//     renewal counts only if stamped before the expiry then in force.
func Resolve(e Entry) Lease {
	l := Lease{Kernel: e.Key}
	var claims []Delta
	for _, d := range e.Deltas {
		l.MaxEpoch = max(l.MaxEpoch, d.Epoch)
		if d.Op == OpClaim && d.Expiry > d.Stamp.HLC.WallMS() {
			claims = append(claims, d)
		}
	}
	slices.SortFunc(claims, func(a, b Delta) int {
		if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
			return c
		}
		return compareRecords(a, b)
	})
	var cur *Delta
	for i := range claims {
		if c := &claims[i]; cur == nil || c.Epoch > cur.Epoch {
			cur = c
		}
	}
	if cur == nil {
		return l
	}
	l.Holder, l.Epoch, l.Granted, l.Job = cur.Stamp.Node, cur.Epoch, cur.Stamp, string(cur.Value)
	l.Expiry, l.Renewed = effectiveExpiry(e.Deltas, *cur, Stamp{HLC: ^HLC(0)})
	l.Released = releasedBefore(e.Deltas, *cur, Stamp{HLC: ^HLC(0)})
	return l
}

// belongs reports whether record r is a renewal or release of claim c.
func belongs(r, c Delta) bool {
	return r.Stamp.Node == c.Stamp.Node && r.Epoch == c.Epoch && c.Stamp.Less(r.Stamp)
}

// effectiveExpiry returns claim c's expiry extended by its renewals stamped
// before at, and the last renewal that counted. records are sorted by stamp.
func effectiveExpiry(records []Delta, c Delta, at Stamp) (int64, Stamp) {
	exp, last := c.Expiry, Stamp{}
	for _, r := range records {
		if !r.Stamp.Less(at) {
			break
		}
		if r.Op == OpRenew && belongs(r, c) && r.Stamp.HLC.WallMS() < exp {
			exp, last = max(exp, r.Expiry), r.Stamp
		}
	}
	return exp, last
}

// releasedBefore reports whether claim c was released by a record stamped before at.
func releasedBefore(records []Delta, c Delta, at Stamp) bool {
	for _, r := range records {
		if !r.Stamp.Less(at) {
			break
		}
		if r.Op == OpRelease && belongs(r, c) {
			return true
		}
	}
	return false
}

// endedBefore reports whether the lease won by claim c had been released or
// had expired at stamp at.
func endedBefore(records []Delta, c Delta, at Stamp) bool {
	if releasedBefore(records, c, at) {
		return true
	}
	exp, _ := effectiveExpiry(records, c, at)
	return exp <= at.HLC.WallMS()
}
