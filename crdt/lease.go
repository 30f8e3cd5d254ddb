package crdt

import "cmp"

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
	// Expiry is the effective expiry in wall ms: the greatest of the
	// claim's expiry and the expiries of the holder's renewals of the
	// epoch, whatever their stamps.
	Expiry int64
	// Released is true once the holder released this epoch.
	Released bool
	// Renewed is the stamp of the renewal that gave Expiry: the holder's
	// renewal of the epoch with the greatest expiry, if that is after the
	// claim's own (zero if none).
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
//   - A claim counts only if its expiry is after its own stamp. The highest
//     epoch among counting claims wins, so the epoch a kernel shows never
//     goes backwards and a fencing token, once seen, is never undercut.
//     Within that epoch the claim with the smallest stamp wins: first come,
//     first served.
//   - An agent claims epoch MaxEpoch+1 only when it sees the lease released
//     or expired (past expiry plus max_skew), so a higher epoch supersedes a
//     live lease only when the claimant could not see it renewed: across a
//     partition. After the heal the newer epoch wins and the old holder's
//     agent reports "lost".
//   - A renewal or release belongs to the winning claim when it has the
//     claim's writer and epoch, whatever its stamp. The lease expires at
//     the greatest of the claim's expiry and its renewals' expiries, and is
//     released once any release of it exists.
//
// Why a renewal may count whatever its stamp (the rule once required each
// renewal to be stamped before the expiry then in force, which needed every
// renewal ever made): a renewal stamped after the lease expired can only
// revive the holder's own lease, and only while nobody claimed a higher
// epoch. Any claim of epoch+1, made because the lease looked expired or
// released, wins whatever the old epoch's renewals say: the highest epoch
// wins. So a late renewal never takes a kernel from another holder; at
// worst it makes an expired lease live again until the next claim. Honest
// agents never write one: they renew only a lease they see live.
func Resolve(e Entry) Lease {
	l := Lease{Kernel: e.Key}
	for _, d := range e.Deltas {
		l.MaxEpoch = max(l.MaxEpoch, d.Epoch)
	}
	wi := winningClaim(e.Deltas)
	if wi < 0 {
		return l
	}
	win := &e.Deltas[wi]
	l.Holder, l.Epoch, l.Granted, l.Job, l.Expiry = win.Stamp.Node, win.Epoch, win.Stamp, string(win.Value), win.Expiry
	var renewal *Delta
	for i := range e.Deltas {
		r := &e.Deltas[i]
		if !belongs(*r, *win) {
			continue
		}
		switch r.Op {
		case OpRenew:
			if renewal == nil || compareRenewals(*r, *renewal) > 0 {
				renewal = r
			}
		case OpRelease:
			l.Released = true
		}
	}
	if renewal != nil && renewal.Expiry > l.Expiry {
		l.Expiry, l.Renewed = renewal.Expiry, renewal.Stamp
	}
	return l
}

// winningClaim returns the index of the winning claim among records, -1 if
// none: of the counting claims, the one of the highest epoch, and in it the
// smallest in record order.
func winningClaim(records []Delta) int {
	win := -1
	for i, d := range records {
		if !counts(d) {
			continue
		}
		if win < 0 {
			win = i
			continue
		}
		if w := records[win]; d.Epoch > w.Epoch || (d.Epoch == w.Epoch && compareRecords(d, w) < 0) {
			win = i
		}
	}
	return win
}

// counts reports whether d is a claim that can win: one whose expiry is
// after its own stamp.
func counts(d Delta) bool {
	return d.Op == OpClaim && d.Expiry > d.Stamp.HLC.WallMS()
}

// belongs reports whether record r is a renewal or release of claim c: it
// has c's writer and epoch.
func belongs(r, c Delta) bool {
	return (r.Op == OpRenew || r.Op == OpRelease) && r.Stamp.Node == c.Stamp.Node && r.Epoch == c.Epoch
}

// compareRenewals orders two renewals of one writer and epoch: the greater
// expiry is greater, then the usual record order.
func compareRenewals(a, b Delta) int {
	if c := cmp.Compare(a.Expiry, b.Expiry); c != 0 {
		return c
	}
	return compareRecords(a, b)
}
