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
// records reaches the same verdict, and it gives the same verdict on the
// pruned set Entry.Apply keeps as on every record ever applied. The rule
// (DESIGN.md, kernel leases, as amended in the README):
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

// pruneRecords returns the records of a kernel set that can still matter,
// in their order; records must be sorted by compareRecords without
// duplicates. It never modifies records and returns a new slice.
//
// Let E be the highest epoch of any record and W the highest epoch of any
// counting claim. Kept are:
//
//   - per writer, its smallest counting claim of epoch W (no counting claim
//     is of a higher epoch, and a lower epoch can never win again);
//   - per writer and epoch from W up, the renewal with the greatest
//     (expiry, record order) and the release with the smallest record
//     order: Resolve reads only the greatest expiry and whether a release
//     exists. Epochs above W hold no counting claim; their renewals and
//     releases are kept because their claim may still arrive. An honest
//     agent writes them only for a claim of its own, so once every record
//     has arrived everywhere, W is E;
//   - the smallest non-counting claim of epoch E, and only while E holds no
//     counting claim: it never wins, and is kept only so that MaxEpoch
//     never decreases (a counting claim of E carries E as well).
//
// Every other record goes: records of epochs below W, later claims of a
// writer in W, dominated renewals and releases, other non-counting claims.
// So a kernel holds at most three records per writer that wrote in W
// (claim, renewal, release), plus what is still waiting for its claim.
//
// Every class kept is an extremum under a total order, over records
// selected by E and W, and E and W only grow as records are added. So for
// any record sets A and B, prune(prune(A) ∪ B) == prune(A ∪ B): prune(A)
// keeps a record of epoch E(A) and the counting claims of W(A), so E and
// W come out the same; every class from W(A ∪ B) up is a class from W(A)
// up, whose extremum over A prune(A) kept; and a non-counting claim kept
// for A ∪ B is of epoch E(A ∪ B) > W(A ∪ B) >= W(A), so if it is in A then
// E(A) = E(A ∪ B) > W(A) and prune(A) kept it. Hence the entry is a
// function of the union of the records ever applied, and Merge stays
// commutative, associative and idempotent. Resolve reads, from the full
// set, E, W, the smallest counting claim of W, and that writer's greatest
// renewal and any release of W: all kept, so it gives the same lease.
func pruneRecords(records []Delta) []Delta {
	var maxEpoch, winEpoch uint64
	anyCounts := false
	for _, d := range records {
		maxEpoch = max(maxEpoch, d.Epoch)
		if counts(d) && (!anyCounts || d.Epoch > winEpoch) {
			winEpoch, anyCounts = d.Epoch, true
		}
	}
	type class struct {
		op    Op
		node  string
		epoch uint64
	}
	keep := make([]bool, len(records))
	kept := make(map[class]int, len(records)) // index in records of the extremum so far
	noncounting := -1
	for i, d := range records {
		if d.Epoch < winEpoch {
			continue
		}
		switch {
		case counts(d):
			// Of epoch winEpoch; records come in order, so the first is the smallest.
			c := class{OpClaim, d.Stamp.Node, d.Epoch}
			if _, ok := kept[c]; !ok {
				kept[c] = i
			}
		case d.Op == OpRenew:
			c := class{OpRenew, d.Stamp.Node, d.Epoch}
			if j, ok := kept[c]; !ok || compareRenewals(d, records[j]) > 0 {
				kept[c] = i
			}
		case d.Op == OpRelease:
			c := class{OpRelease, d.Stamp.Node, d.Epoch}
			if _, ok := kept[c]; !ok {
				kept[c] = i
			}
		default:
			// A non-counting claim, or a record of an op no kernel takes:
			// it only names an epoch.
			if d.Epoch == maxEpoch && (!anyCounts || winEpoch < maxEpoch) && noncounting < 0 {
				noncounting = i
			}
		}
	}
	for _, i := range kept {
		keep[i] = true
	}
	if noncounting >= 0 {
		keep[noncounting] = true
	}
	out := make([]Delta, 0, len(kept)+1)
	for i, d := range records {
		if keep[i] {
			out = append(out, d)
		}
	}
	return out
}
