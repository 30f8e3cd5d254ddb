package crdt

import (
	"math/rand/v2"
	"slices"
	"testing"
)

const leaseKey = "kernel/gpu0"

func stampAt(wall int64, node string) Stamp { return Stamp{HLC: MakeHLC(wall, 0), Node: node} }

func claimAt(node string, wall int64, epoch uint64, expiry int64) Delta {
	return Delta{Key: leaseKey, Stamp: stampAt(wall, node), Op: OpClaim, Epoch: epoch, Expiry: expiry}
}

func renewAt(node string, wall int64, epoch uint64, expiry int64) Delta {
	return Delta{Key: leaseKey, Stamp: stampAt(wall, node), Op: OpRenew, Epoch: epoch, Expiry: expiry}
}

func releaseAt(node string, wall int64, epoch uint64) Delta {
	return Delta{Key: leaseKey, Stamp: stampAt(wall, node), Op: OpRelease, Epoch: epoch}
}

func withJob(d Delta, job string) Delta {
	d.Value = []byte(job)
	return d
}

func kernelEntry(records ...Delta) Entry {
	var e Entry
	for _, d := range records {
		e, _ = e.Apply(d)
	}
	return e
}

// permutations calls f with every ordering of ds (or many random ones for
// long lists).
func permutations(ds []Delta, f func([]Delta)) {
	if len(ds) > 6 {
		r := rand.New(rand.NewPCG(uint64(len(ds)), 7))
		for range 500 {
			p := append([]Delta(nil), ds...)
			r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
			f(p)
		}
		return
	}
	var rec func(k int)
	p := append([]Delta(nil), ds...)
	rec = func(k int) {
		if k == len(p) {
			f(append([]Delta(nil), p...))
			return
		}
		for i := k; i < len(p); i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

// resolveAllOrders resolves records applied in every order, with a
// duplicate, and fails unless all verdicts are identical.
func resolveAllOrders(t *testing.T, records []Delta) Lease {
	t.Helper()
	want := Resolve(kernelEntry(records...))
	permutations(records, func(p []Delta) {
		if len(p) > 0 {
			p = append(p, p[0]) // a duplicate changes nothing
		}
		if got := Resolve(kernelEntry(p...)); got != want {
			t.Fatalf("order %s\n gives %+v\n other order gives %+v", fmtDeltas(p), got, want)
		}
	})
	return want
}

func TestResolveScenarios(t *testing.T) {
	// a claims epoch 1 at 100 until 200 in most cases.
	a1 := claimAt("a", 100, 1, 200)
	for _, tc := range []struct {
		name    string
		records []Delta
		want    Lease // Kernel is filled in
	}{
		{
			name: "no records",
			want: Lease{},
		},
		{
			name:    "first claim wins",
			records: []Delta{withJob(a1, "nightly")},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, Job: "nightly", MaxEpoch: 1},
		},
		{
			name:    "same epoch: smallest stamp wins",
			records: []Delta{claimAt("a", 150, 1, 300), claimAt("b", 100, 1, 200), claimAt("c", 120, 1, 400)},
			want:    Lease{Holder: "b", Epoch: 1, Granted: stampAt(100, "b"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "same epoch, same HLC: node id breaks the tie",
			records: []Delta{claimAt("b", 100, 1, 500), claimAt("a", 100, 1, 200)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name: "same epoch: logical counter orders before node id",
			records: []Delta{
				{Key: leaseKey, Stamp: Stamp{HLC: MakeHLC(100, 1), Node: "a"}, Op: OpClaim, Epoch: 1, Expiry: 200},
				{Key: leaseKey, Stamp: Stamp{HLC: MakeHLC(100, 0), Node: "z"}, Op: OpClaim, Epoch: 1, Expiry: 200},
			},
			want: Lease{Holder: "z", Epoch: 1, Granted: Stamp{HLC: MakeHLC(100, 0), Node: "z"}, Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "same epoch: smallest stamp wins even after it expired",
			records: []Delta{a1, claimAt("b", 250, 1, 400)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "same epoch: smallest stamp wins even after it was released",
			records: []Delta{a1, releaseAt("a", 120, 1), claimAt("b", 150, 1, 400)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, Released: true, MaxEpoch: 1},
		},
		{
			name:    "higher epoch wins even before expiry: epochs never go back",
			records: []Delta{a1, claimAt("b", 150, 2, 300)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(150, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name:    "higher epoch wins whatever the lower lease's renewals",
			records: []Delta{a1, renewAt("a", 180, 1, 300), claimAt("b", 199, 2, 300)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(199, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name:    "higher epoch stamped at the expiry wins",
			records: []Delta{a1, claimAt("b", 200, 2, 300)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(200, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name:    "higher epoch after expiry wins",
			records: []Delta{a1, withJob(claimAt("b", 250, 2, 400), "train")},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(250, "b"), Expiry: 400, Job: "train", MaxEpoch: 2},
		},
		{
			name:    "epochs may skip",
			records: []Delta{a1, claimAt("b", 250, 5, 400)},
			want:    Lease{Holder: "b", Epoch: 5, Granted: stampAt(250, "b"), Expiry: 400, MaxEpoch: 5},
		},
		{
			name:    "higher epoch after release wins",
			records: []Delta{a1, releaseAt("a", 120, 1), claimAt("b", 150, 2, 300)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(150, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name:    "release of a lower epoch does not touch the higher lease",
			records: []Delta{a1, claimAt("b", 150, 2, 300), releaseAt("a", 160, 1)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(150, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name:    "release after expiry still marks the epoch released",
			records: []Delta{a1, releaseAt("a", 300, 1)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, Released: true, MaxEpoch: 1},
		},
		{
			name:    "renew stamped before expiry extends it",
			records: []Delta{a1, renewAt("a", 180, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 300, Renewed: stampAt(180, "a"), MaxEpoch: 1},
		},
		{
			name:    "renewals: the greatest expiry stands",
			records: []Delta{a1, renewAt("a", 190, 1, 300), renewAt("a", 290, 1, 400)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 400, Renewed: stampAt(290, "a"), MaxEpoch: 1},
		},
		{
			name:    "a later renewal with an earlier expiry does not shorten the lease",
			records: []Delta{a1, renewAt("a", 150, 1, 400), renewAt("a", 180, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 400, Renewed: stampAt(150, "a"), MaxEpoch: 1},
		},
		{
			name:    "renewals with equal expiries: Renewed is the later stamp",
			records: []Delta{a1, renewAt("a", 150, 1, 300), renewAt("a", 160, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 300, Renewed: stampAt(160, "a"), MaxEpoch: 1},
		},
		{
			name:    "a renewal expiring before the claim does not shorten it and is not Renewed",
			records: []Delta{a1, renewAt("a", 150, 1, 180)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "new rule: renew stamped at the expiry extends it",
			records: []Delta{a1, renewAt("a", 200, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 300, Renewed: stampAt(200, "a"), MaxEpoch: 1},
		},
		{
			name:    "new rule: renew stamped after the expiry extends it while nobody claimed the next epoch",
			records: []Delta{a1, renewAt("a", 220, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 300, Renewed: stampAt(220, "a"), MaxEpoch: 1},
		},
		{
			name:    "renew stamped after the expiry loses to a claim of the next epoch, stamped before or after it",
			records: []Delta{a1, renewAt("a", 220, 1, 300), claimAt("b", 210, 2, 400), claimAt("c", 250, 2, 400)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(210, "b"), Expiry: 400, MaxEpoch: 2},
		},
		{
			name:    "new rule: a late renewal counts with the renewals before it missing",
			records: []Delta{a1, renewAt("a", 290, 1, 400)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 400, Renewed: stampAt(290, "a"), MaxEpoch: 1},
		},
		{
			name:    "renew by a different node is ignored",
			records: []Delta{a1, renewAt("b", 180, 1, 300), claimAt("c", 250, 2, 400)},
			want:    Lease{Holder: "c", Epoch: 2, Granted: stampAt(250, "c"), Expiry: 400, MaxEpoch: 2},
		},
		{
			name:    "renew for a different epoch is ignored",
			records: []Delta{a1, renewAt("a", 180, 2, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 2},
		},
		{
			name:    "new rule: renew stamped before the claim counts (same writer and epoch)",
			records: []Delta{a1, renewAt("a", 90, 1, 300)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 300, Renewed: stampAt(90, "a"), MaxEpoch: 1},
		},
		{
			name:    "release by a different node is ignored",
			records: []Delta{a1, releaseAt("b", 120, 1)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "release for a different epoch is ignored",
			records: []Delta{a1, releaseAt("a", 120, 2)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 2},
		},
		{
			name:    "new rule: release stamped before the claim counts (same writer and epoch)",
			records: []Delta{a1, releaseAt("a", 90, 1)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, Released: true, MaxEpoch: 1},
		},
		{
			name:    "a renewal of the same writer and epoch by a losing claim does not count for the winner",
			records: []Delta{a1, claimAt("b", 120, 1, 200), renewAt("b", 150, 1, 900), releaseAt("b", 160, 1)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "claim with expiry at its own stamp is ignored",
			records: []Delta{claimAt("a", 100, 1, 100), claimAt("b", 110, 1, 200)},
			want:    Lease{Holder: "b", Epoch: 1, Granted: stampAt(110, "b"), Expiry: 200, MaxEpoch: 1},
		},
		{
			name:    "claim with expiry before its own stamp is ignored but counts for MaxEpoch",
			records: []Delta{claimAt("a", 100, 3, 50)},
			want:    Lease{MaxEpoch: 3},
		},
		{
			name:    "MaxEpoch counts renewals and releases of any epoch",
			records: []Delta{a1, renewAt("z", 120, 9, 130), releaseAt("y", 130, 7)},
			want:    Lease{Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 9},
		},
		{
			name:    "within a higher epoch the smallest stamp wins",
			records: []Delta{a1, claimAt("b", 150, 2, 300), claimAt("c", 250, 2, 400), claimAt("d", 260, 2, 500)},
			want:    Lease{Holder: "b", Epoch: 2, Granted: stampAt(150, "b"), Expiry: 300, MaxEpoch: 2},
		},
		{
			name: "three epochs",
			records: []Delta{a1, claimAt("b", 250, 2, 400), renewAt("b", 390, 2, 600),
				claimAt("c", 500, 3, 700), claimAt("d", 650, 3, 800)},
			want: Lease{Holder: "c", Epoch: 3, Granted: stampAt(500, "c"), Expiry: 700, MaxEpoch: 3},
		},
		{
			name:    "same holder re-claims a higher epoch after its release",
			records: []Delta{a1, releaseAt("a", 150, 1), claimAt("a", 160, 2, 260), renewAt("a", 250, 2, 360)},
			want:    Lease{Holder: "a", Epoch: 2, Granted: stampAt(160, "a"), Expiry: 360, Renewed: stampAt(250, "a"), MaxEpoch: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Kernel = leaseKey
			if len(tc.records) == 0 {
				tc.want.Kernel = ""
			}
			got := resolveAllOrders(t, tc.records)
			if got != tc.want {
				t.Fatalf("Resolve(%s)\n got  %+v\n want %+v", fmtDeltas(tc.records), got, tc.want)
			}
		})
	}
}

func TestResolvePartitionExample(t *testing.T) {
	// Before the cut both sides hold h's epoch 6 claim: granted at 100,
	// expiring at 400.
	h6 := claimAt("h", 100, 6, 400)
	// Side A: h releases epoch 6 at 200, and a claims epoch 7 at 250.
	sideA := []Delta{h6, releaseAt("h", 200, 6), claimAt("a", 250, 7, 600)}

	for _, tc := range []struct {
		name  string
		b7    Delta // side B's epoch 7 claim; side B never saw the release
		sideB Lease // what side B alone concludes
		want  Lease // the verdict after the heal
	}{
		{
			// B waits for epoch 6 to expire before claiming: both epoch 7
			// claims are eligible, so the smaller stamp (a's) wins.
			name:  "B claims after expiry",
			b7:    claimAt("b", 410, 7, 700),
			sideB: Lease{Kernel: leaseKey, Holder: "b", Epoch: 7, Granted: stampAt(410, "b"), Expiry: 700, MaxEpoch: 7},
			want:  Lease{Kernel: leaseKey, Holder: "a", Epoch: 7, Granted: stampAt(250, "a"), Expiry: 600, MaxEpoch: 7},
		},
		{
			// B's claim is stamped while epoch 6 was still live (an agent
			// does not claim so; a buggy one might): epoch 7 still wins, by
			// stamp within the epoch.
			name:  "B claims while epoch 6 is live",
			b7:    claimAt("b", 150, 7, 700),
			sideB: Lease{Kernel: leaseKey, Holder: "b", Epoch: 7, Granted: stampAt(150, "b"), Expiry: 700, MaxEpoch: 7},
			want:  Lease{Kernel: leaseKey, Holder: "b", Epoch: 7, Granted: stampAt(150, "b"), Expiry: 700, MaxEpoch: 7},
		},
		{
			// Judged at stamps: B's claim came after the release (which B
			// had not seen) and before a's, so it wins once the records
			// meet.
			name:  "B claims after the release it did not see",
			b7:    claimAt("b", 220, 7, 700),
			sideB: Lease{Kernel: leaseKey, Holder: "b", Epoch: 7, Granted: stampAt(220, "b"), Expiry: 700, MaxEpoch: 7},
			want:  Lease{Kernel: leaseKey, Holder: "b", Epoch: 7, Granted: stampAt(220, "b"), Expiry: 700, MaxEpoch: 7},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sideB := []Delta{h6, tc.b7}
			a, b := kernelEntry(sideA...), kernelEntry(sideB...)
			if got, want := Resolve(a), (Lease{Kernel: leaseKey, Holder: "a", Epoch: 7, Granted: stampAt(250, "a"), Expiry: 600, MaxEpoch: 7}); got != want {
				t.Fatalf("side A alone: %+v, want %+v", got, want)
			}
			if got := Resolve(b); got != tc.sideB {
				t.Fatalf("side B alone: %+v, want %+v", got, tc.sideB)
			}
			// Heal by entry merge either way, or by any order of records.
			ab, ba := Merge(a, b), Merge(b, a)
			if !ab.Equal(ba) {
				t.Fatalf("Merge not commutative:\n %s\n %s", fmtEntry(ab), fmtEntry(ba))
			}
			if got := Resolve(ab); got != tc.want {
				t.Fatalf("after heal: %+v, want %+v", got, tc.want)
			}
			union := append(append([]Delta(nil), sideA...), sideB...) // h6 twice
			if got := resolveAllOrders(t, union); got != tc.want {
				t.Fatalf("after heal, record by record: %+v, want %+v", got, tc.want)
			}
			// Three-way: a third replica that saw only h's claim, merged in
			// any grouping, changes nothing.
			c := kernelEntry(h6)
			for _, e := range []Entry{Merge(Merge(a, c), b), Merge(a, Merge(c, b)), Merge(c, Merge(b, a))} {
				if got := Resolve(e); got != tc.want {
					t.Fatalf("three-way heal: %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

// A lease held for a day: one claim, then a renewal every ttl/3 (ttl 3 s),
// as the holder's agent writes them. The entry holds the claim and the
// last renewal, never more, and the lease is live until the last
// renewal's expiry. (Before records were pruned on apply, one kernel held
// a record per renewal: 86,401 here.)
func TestDayLongLeaseKeepsTwoRecords(t *testing.T) {
	const ttl, every = int64(3000), int64(1000)
	start := int64(1_700_000_000_000)
	day := int64(24 * 3600 * 1000)
	e, changed := Entry{}.Apply(claimAt("a", start, 1, start+ttl))
	if !changed {
		t.Fatal("the claim changed nothing")
	}
	var last Delta
	for at := start + every; at <= start+day; at += every {
		last = renewAt("a", at, 1, at+ttl)
		before := e
		if e, changed = e.Apply(last); !changed {
			t.Fatalf("renewal at +%d ms changed nothing", at-start)
		}
		if n := len(e.Deltas); n > 2 {
			t.Fatalf("after the renewal at +%d ms the entry holds %d records: %s", at-start, n, fmtEntry(e))
		}
		if len(before.Deltas) == 2 && before.Deltas[1].Stamp.HLC.WallMS() != at-every {
			t.Fatalf("an earlier entry changed under a reader: %s", fmtEntry(before))
		}
	}
	l := Resolve(e)
	want := Lease{Kernel: leaseKey, Holder: "a", Epoch: 1, Granted: stampAt(start, "a"), Expiry: last.Expiry, Renewed: last.Stamp, MaxEpoch: 1}
	if l != want {
		t.Fatalf("after a day: %+v, want %+v", l, want)
	}
	if now := last.Stamp.HLC.WallMS(); !l.Live(now) || !l.Live(last.Expiry-1) || l.Live(last.Expiry) {
		t.Fatalf("after a day: Live at the last renewal %v, just before its expiry %v, at it %v", l.Live(now), l.Live(last.Expiry-1), l.Live(last.Expiry))
	}
	if len(e.Deltas) != 2 || !e.Deltas[0].Equal(claimAt("a", start, 1, start+ttl)) || !e.Deltas[1].Equal(last) {
		t.Fatalf("after a day the entry holds %s, want the claim and the last renewal", fmtEntry(e))
	}
	// A renewal delivered late changes nothing.
	if _, changed := e.Apply(renewAt("a", start+day/2, 1, start+day/2+ttl)); changed {
		t.Fatal("a late, dominated renewal changed the entry")
	}
}

// Apply reports no change, and returns its receiver, when a record cannot
// matter; it never modifies the receiver's slice.
func TestApplyDropsWhatCannotMatter(t *testing.T) {
	base := kernelEntry(claimAt("a", 100, 2, 200), renewAt("a", 150, 2, 300), releaseAt("a", 180, 2), claimAt("z", 90, 3, 80))
	for _, tc := range []struct {
		name    string
		d       Delta
		changed bool
	}{
		{"a record already held", renewAt("a", 150, 2, 300), false},
		{"a claim of a lower epoch", claimAt("b", 50, 1, 900), false},
		{"a renewal of a lower epoch", renewAt("a", 190, 1, 900), false},
		{"a release of a lower epoch", releaseAt("a", 60, 1), false},
		{"a renewal with an earlier expiry", renewAt("a", 160, 2, 250), false},
		{"a renewal with an equal expiry, stamped earlier", renewAt("a", 140, 2, 300), false},
		{"a renewal with an equal expiry, stamped later", renewAt("a", 160, 2, 300), true},
		{"a renewal with a later expiry", renewAt("a", 160, 2, 400), true},
		{"a later release", releaseAt("a", 190, 2), false},
		{"an earlier release", releaseAt("a", 170, 2), true},
		{"a later claim of the same writer and epoch", claimAt("a", 120, 2, 500), false},
		{"another writer's claim of the epoch", claimAt("b", 120, 2, 500), true},
		{"a later non-counting claim of the highest epoch", claimAt("y", 95, 3, 90), false},
		{"an earlier non-counting claim of the highest epoch", claimAt("y", 85, 3, 80), true},
		{"a non-counting claim of the winning epoch", claimAt("y", 85, 2, 80), false},
		{"a claim of a higher epoch", claimAt("b", 300, 3, 500), true},
		{"a renewal of an epoch nobody claimed yet", renewAt("b", 300, 4, 500), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := cloneEntry(base)
			got, changed := base.Apply(tc.d)
			if changed != tc.changed || changed == got.Equal(base) {
				t.Fatalf("Apply(%s) on %s: changed=%v (equal %v), want %v; got %s", fmtDelta(tc.d), fmtEntry(base), changed, got.Equal(base), tc.changed, fmtEntry(got))
			}
			if !base.Equal(held) {
				t.Fatalf("Apply modified its receiver: %s", fmtEntry(base))
			}
			if Resolve(got) != Resolve(kernelEntry(append(slices.Clone(base.Deltas), tc.d)...)) {
				t.Fatal("Resolve differs by the order of arrival")
			}
		})
	}
	if len(base.Deltas) != 4 {
		t.Fatalf("base holds %s", fmtEntry(base))
	}
}

func TestLeaseLive(t *testing.T) {
	l := Lease{Kernel: leaseKey, Holder: "a", Epoch: 1, Granted: stampAt(100, "a"), Expiry: 200, MaxEpoch: 1}
	for _, tc := range []struct {
		now  int64
		want bool
	}{{100, true}, {199, true}, {200, false}, {201, false}} {
		if got := l.Live(tc.now); got != tc.want {
			t.Errorf("Live(%d) = %v, want %v", tc.now, got, tc.want)
		}
	}
	released := l
	released.Released = true
	if released.Live(150) {
		t.Error("released lease is live")
	}
	if (Lease{Expiry: 200}).Live(150) {
		t.Error("lease without a holder is live")
	}
	if (Lease{}).Live(0) {
		t.Error("zero lease is live")
	}
	// Through Resolve.
	r := Resolve(kernelEntry(claimAt("a", 100, 1, 200), renewAt("a", 150, 1, 260)))
	if !r.Live(259) || r.Live(260) {
		t.Errorf("renewed lease: Live(259)=%v Live(260)=%v, want true false", r.Live(259), r.Live(260))
	}
}

func TestTaskState(t *testing.T) {
	all := []TaskState{TaskQueued, TaskRunning, TaskCancelRequested, TaskDone, TaskFailed, TaskCancelled}
	names := []string{"queued", "running", "cancel-requested", "done", "failed", "cancelled"}
	for i, s := range all {
		if s.String() != names[i] {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), names[i])
		}
		got, ok := ParseTaskState(s.String())
		if !ok || got != s {
			t.Errorf("ParseTaskState(%q) = %v, %v; want %v, true", s.String(), got, ok, s)
		}
		if !s.Valid() {
			t.Errorf("%v not Valid", s)
		}
		wantTerminal := s == TaskDone || s == TaskFailed || s == TaskCancelled
		if s.Terminal() != wantTerminal {
			t.Errorf("%v.Terminal() = %v, want %v", s, s.Terminal(), wantTerminal)
		}
	}
	for _, name := range []string{"", "unknown", "Queued", "cancel_requested", "canceled", " done"} {
		if s, ok := ParseTaskState(name); ok {
			t.Errorf("ParseTaskState(%q) = %v, true; want false", name, s)
		}
	}
	for _, s := range []TaskState{0, TaskCancelled + 1, 255} {
		if s.Valid() || s.Terminal() || s.String() != "unknown" {
			t.Errorf("TaskState(%d): Valid=%v Terminal=%v String=%q", s, s.Valid(), s.Terminal(), s.String())
		}
	}
}

func TestOp(t *testing.T) {
	for op, name := range map[Op]string{OpPut: "put", OpDelete: "delete", OpClaim: "claim", OpRenew: "renew", OpRelease: "release"} {
		if op.String() != name || !op.Valid() {
			t.Errorf("Op %d: String=%q Valid=%v, want %q true", op, op.String(), op.Valid(), name)
		}
		if got, ok := ParseOp(name); !ok || got != op {
			t.Errorf("ParseOp(%q) = %d, %v; want %d, true", name, got, ok, op)
		}
	}
	for _, s := range []string{"", "op(0)", "PUT", "claim "} {
		if _, ok := ParseOp(s); ok {
			t.Errorf("ParseOp(%q) succeeded", s)
		}
	}
	for _, op := range []Op{0, OpRelease + 1, 200} {
		if op.Valid() {
			t.Errorf("Op(%d).Valid() = true", op)
		}
		if op.String() == "" {
			t.Errorf("Op(%d).String() is empty", op)
		}
	}
}

func TestDeltaLive(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Delta
		now  int64
		want bool
	}{
		{"put without expiry", Delta{Op: OpPut}, 1 << 50, true},
		{"put before expiry", Delta{Op: OpPut, Expiry: 200}, 199, true},
		{"put at expiry", Delta{Op: OpPut, Expiry: 200}, 200, false},
		{"put after expiry", Delta{Op: OpPut, Expiry: 200}, 201, false},
		{"delete", Delta{Op: OpDelete}, 0, false},
		{"delete with expiry", Delta{Op: OpDelete, Expiry: 200}, 100, false},
		{"claim is not a present value", Delta{Op: OpClaim, Expiry: 200}, 100, false},
		{"zero delta", Delta{}, 0, false},
	} {
		if got := tc.d.Live(tc.now); got != tc.want {
			t.Errorf("%s: Live(%d) = %v, want %v", tc.name, tc.now, got, tc.want)
		}
	}
}

func TestNamespaceOf(t *testing.T) {
	for key, want := range map[string]Namespace{
		"svc/web/1": NSService, "bl/fraud/u1": NSBlacklist, "task/t1": NSTask,
		"kernel/gpu0": NSKernel, "node/n1": NSNode, "noslash": "", "": "", "/x": "",
	} {
		if got := NamespaceOf(key); got != want {
			t.Errorf("NamespaceOf(%q) = %q, want %q", key, got, want)
		}
	}
	for _, ns := range Namespaces {
		if IsSet(ns) != (ns == NSKernel) {
			t.Errorf("IsSet(%q) = %v", ns, IsSet(ns))
		}
	}
}

func TestStampOrder(t *testing.T) {
	s := []Stamp{{}, {HLC: 1, Node: ""}, {HLC: 1, Node: "a"}, {HLC: 1, Node: "b"}, {HLC: 2, Node: "a"}}
	for i := range s {
		for j := range s {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := s[i].Compare(s[j]); got != want {
				t.Errorf("%+v.Compare(%+v) = %d, want %d", s[i], s[j], got, want)
			}
			if s[i].Less(s[j]) != (want < 0) {
				t.Errorf("%+v.Less(%+v) wrong", s[i], s[j])
			}
		}
	}
	if !(Stamp{}).IsZero() || (Stamp{HLC: 1}).IsZero() || (Stamp{Node: "a"}).IsZero() {
		t.Error("IsZero wrong")
	}
}
