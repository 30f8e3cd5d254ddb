package crdt

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/quick"
)

// Property tests. Every test draws from a PCG seeded by one 64-bit seed,
// chosen at random per run and logged. Reproduce a failure with
//
//	go test ./crdt/ -run TestName -crdt.seed=N
//
// or RUMOR_CRDT_SEED=N in the environment.
var seedFlag = flag.Uint64("crdt.seed", 0, "seed for crdt property tests (0: random; env RUMOR_CRDT_SEED also works)")

// propRand returns the test's random source and logs its seed.
func propRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("RUMOR_CRDT_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("RUMOR_CRDT_SEED=%q: %v", s, err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = rand.Uint64() | 1
	}
	t.Logf("seed %d (reproduce: go test ./crdt/ -run '^%s$' -crdt.seed=%d)", seed, t.Name(), seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// propKeys spans every namespace, two keys each.
var propKeys = []string{
	"svc/web/i1", "svc/web/i2",
	"bl/fraud/u1", "bl/tokens/t9",
	"task/t1", "task/t2",
	"kernel/k1", "kernel/k2",
	"node/n1", "node/n2",
	"kv/config/a", "kv/config/app/env/b",
}

var propNodes = []string{"n1", "n2", "n3", "n4"}

// gen makes random deltas with stamps from a small range, so equal HLCs
// across nodes and fully equal stamps are common.
type gen struct{ r *rand.Rand }

func (g gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g gen) stamp() Stamp {
	return Stamp{HLC: MakeHLC(1000+g.r.Int64N(6), uint16(g.r.IntN(2))), Node: g.pick(propNodes)}
}

func (g gen) delta(key string) Delta {
	d := Delta{Key: key, Stamp: g.stamp()}
	wall := d.Stamp.HLC.WallMS()
	switch NamespaceOf(key) {
	case NSService:
		d.Op = OpPut
		if g.r.IntN(4) == 0 {
			d.Op = OpDelete
			break
		}
		d.Value = Encode(ServiceValue{Addr: g.pick([]string{"10.0.0.1:80", "10.0.0.2:80"}), Status: g.pick([]string{"up", "down", "draining"})})
		if g.r.IntN(3) == 0 {
			d.Expiry = wall + g.r.Int64N(10)
		}
	case NSNode:
		d.Op = OpPut
		if g.r.IntN(4) == 0 {
			d.Op = OpDelete
			break
		}
		d.Value = Encode(MemberValue{Addrs: []string{g.pick([]string{"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001"})}, Version: g.pick([]string{"v1", "v2"})})
	case NSKV:
		d.Op = OpPut
		if g.r.IntN(4) == 0 {
			d.Op = OpDelete
		}
		d.Value = Encode(KVValue{Value: g.pick([]string{"", "a", "b"}), Version: 1 + uint64(g.r.IntN(3))})
		if d.Op == OpPut && g.r.IntN(3) == 0 {
			d.Expiry = wall + g.r.Int64N(10)
		}
	case NSBlacklist:
		d.Op = OpPut // add
		if g.r.IntN(2) == 0 {
			d.Op = OpDelete // remove
			break
		}
		d.Value = Encode(BlacklistValue{Reason: g.pick([]string{"", "fraud", "logout"})})
		if g.r.IntN(3) == 0 {
			d.Expiry = wall + g.r.Int64N(10)
		}
	case NSTask:
		d.Op = OpPut
		d.Task = TaskState(1 + g.r.IntN(6))
		d.Value = Encode(TaskValue{Owner: g.pick(propNodes), Result: g.pick([]string{"", "s3://r/1"})})
	case NSKernel:
		d.Epoch = 1 + uint64(g.r.IntN(3))
		switch g.r.IntN(5) {
		case 0, 1:
			d.Op = OpClaim
			d.Expiry = wall - 1 + g.r.Int64N(8) // sometimes not after its own stamp
			d.Value = []byte(g.pick([]string{"", "nightly", "train"}))
		case 2, 3:
			d.Op = OpRenew
			d.Expiry = wall + g.r.Int64N(8)
		default:
			d.Op = OpRelease
		}
	}
	return d
}

// mutate returns d under the same stamp with different content: a bug or
// a forgery that the merge must still resolve deterministically.
func (g gen) mutate(d Delta) Delta {
	d = cloneDelta(d)
	switch g.r.IntN(4) {
	case 0:
		d.Value = append(d.Value, 'x')
	case 1:
		d.Expiry += 1 + g.r.Int64N(3)
	case 2:
		switch NamespaceOf(d.Key) {
		case NSTask:
			d.Task = TaskState(1 + (int(d.Task)+g.r.IntN(5))%6)
		case NSKernel:
			d.Op = []Op{OpClaim, OpRenew, OpRelease}[g.r.IntN(3)]
			d.Epoch = 1 + uint64(g.r.IntN(3))
		default:
			if d.Op == OpPut {
				d.Op = OpDelete
			} else {
				d.Op = OpPut
			}
		}
	default:
		d.Value = []byte("other")
	}
	return d
}

// deltas returns 1..12 random deltas for key, including exact duplicates
// (as separate copies) and same-stamp, different-content pairs.
func (g gen) deltas(key string) []Delta {
	n := 1 + g.r.IntN(10)
	ds := make([]Delta, 0, n+4)
	for range n {
		ds = append(ds, g.delta(key))
	}
	for range g.r.IntN(3) {
		ds = append(ds, cloneDelta(ds[g.r.IntN(len(ds))]))
	}
	if g.r.IntN(3) == 0 {
		ds = append(ds, g.mutate(ds[g.r.IntN(len(ds))]))
	}
	g.r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

func cloneDelta(d Delta) Delta {
	d.Value = bytes.Clone(d.Value)
	return d
}

func cloneEntry(e Entry) Entry {
	out := Entry{Key: e.Key}
	for _, d := range e.Deltas {
		out.Deltas = append(out.Deltas, cloneDelta(d))
	}
	return out
}

// fold applies ds in order to the zero entry, checking Apply's changed flag.
func fold(t *testing.T, ds []Delta) Entry {
	t.Helper()
	var e Entry
	for _, d := range ds {
		next, changed := e.Apply(d)
		if changed == next.Equal(e) {
			t.Fatalf("Apply(%s) on %s reported changed=%v, but before/after equal=%v", fmtDelta(d), fmtEntry(e), changed, next.Equal(e))
		}
		e = next
	}
	return e
}

// subset returns a random sub-multiset of ds, shuffled, with random duplicates.
func (g gen) subset(ds []Delta) []Delta {
	var out []Delta
	for _, d := range ds {
		for g.r.IntN(2) == 0 {
			out = append(out, d)
			if g.r.IntN(3) != 0 {
				break
			}
		}
	}
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// reordered returns every delta of ds at least once, in random order, some repeated.
func (g gen) reordered(ds []Delta) []Delta {
	out := slices.Clone(ds)
	for range g.r.IntN(len(ds) + 1) {
		out = append(out, cloneDelta(ds[g.r.IntN(len(ds))]))
	}
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func fmtDelta(d Delta) string {
	return fmt.Sprintf("{%s %v@%s %v exp=%d ep=%d task=%v val=%q}", d.Key, d.Stamp.HLC, d.Stamp.Node, d.Op, d.Expiry, d.Epoch, d.Task, d.Value)
}

func fmtEntry(e Entry) string {
	parts := make([]string, len(e.Deltas))
	for i, d := range e.Deltas {
		parts[i] = fmtDelta(d)
	}
	return fmt.Sprintf("Entry{%q [%s]}", e.Key, strings.Join(parts, " "))
}

func fmtDeltas(ds []Delta) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmtDelta(d)
	}
	return "[" + strings.Join(parts, "\n  ") + "]"
}

const propIters = 300

func TestMergeLaws(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		for _, key := range propKeys {
			ds := g.deltas(key)
			a, b, c := fold(t, g.subset(ds)), fold(t, g.subset(ds)), fold(t, g.subset(ds))
			a0, b0, c0 := cloneEntry(a), cloneEntry(b), cloneEntry(c)
			fail := func(law string, x, y Entry) {
				t.Fatalf("iteration %d, key %s: %s\n a = %s\n b = %s\n c = %s\n lhs = %s\n rhs = %s",
					it, key, law, fmtEntry(a0), fmtEntry(b0), fmtEntry(c0), fmtEntry(x), fmtEntry(y))
			}
			if x, y := Merge(a, b), Merge(b, a); !x.Equal(y) {
				fail("Merge(a,b) != Merge(b,a)", x, y)
			}
			if x, y := Merge(Merge(a, b), c), Merge(a, Merge(b, c)); !x.Equal(y) {
				fail("Merge(Merge(a,b),c) != Merge(a,Merge(b,c))", x, y)
			}
			if x := Merge(a, a); !x.Equal(a) {
				fail("Merge(a,a) != a", x, a)
			}
			if x := Merge(a, Entry{}); !x.Equal(a) {
				fail("Merge(a,zero) != a", x, a)
			}
			if x := Merge(Entry{}, a); !x.Equal(a) {
				fail("Merge(zero,a) != a", x, a)
			}
			// The merge absorbs what it already holds.
			if ab := Merge(a, b); !Merge(ab, a).Equal(ab) || !Merge(ab, b).Equal(ab) {
				fail("Merge(Merge(a,b), a or b) != Merge(a,b)", Merge(Merge(a, b), a), Merge(a, b))
			}
			// Entries are values: nothing above changed a, b or c.
			if !a.Equal(a0) || !b.Equal(b0) || !c.Equal(c0) {
				fail("Merge modified an argument", a, a0)
			}
			for _, e := range []Entry{a, b, c} {
				if len(e.Deltas) > 0 && e.Key != key {
					fail("entry has the wrong key", e, Entry{Key: key})
				}
			}
		}
	}
}

func TestApplyOrderAndDuplicatesDoNotMatter(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		for _, key := range propKeys {
			ds := g.deltas(key)
			want := fold(t, ds)
			for range 4 {
				order := g.reordered(ds)
				if got := fold(t, order); !got.Equal(want) {
					t.Fatalf("iteration %d, key %s: order changes the result\n deltas %s\n order %s\n got  %s\n want %s",
						it, key, fmtDeltas(ds), fmtDeltas(order), fmtEntry(got), fmtEntry(want))
				}
			}
		}
	}
}

// replica is a whole replicated map, as a store would keep it.
type replica map[string]Entry

func (rp replica) apply(d Delta) { rp[d.Key], _ = rp[d.Key].Apply(d) }

// pull merges every entry of o into rp.
func (rp replica) pull(o replica) {
	for k, e := range o {
		rp[k] = Merge(rp[k], e)
	}
}

func (rp replica) equal(o replica) (string, bool) {
	for _, k := range propKeys {
		if !rp[k].Equal(o[k]) {
			return k, false
		}
	}
	return "", len(rp) == len(o)
}

func TestReplicasConvergeAfterDropsAndExchange(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		// One stream of deltas over every key, interleaved.
		var all []Delta
		for _, key := range propKeys {
			all = append(all, g.deltas(key)...)
		}
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		want := replica{}
		for _, d := range all {
			want.apply(d)
		}

		// Each replica gets a lossy, duplicated, reordered share; every delta
		// reaches at least one replica.
		reps := make([]replica, 3+r.IntN(3))
		for i := range reps {
			reps[i] = replica{}
		}
		for _, d := range g.reordered(all) {
			got := false
			for _, rp := range reps {
				if r.IntN(3) == 0 {
					rp.apply(d)
					got = true
				}
			}
			if !got {
				reps[r.IntN(len(reps))].apply(d)
			}
		}
		// Random pairwise anti-entropy, then a ring twice round so that
		// everything has reached everyone.
		for range r.IntN(2 * len(reps)) {
			i, j := r.IntN(len(reps)), r.IntN(len(reps))
			reps[i].pull(reps[j])
			reps[j].pull(reps[i])
		}
		for range 2 {
			for i := range reps {
				reps[(i+1)%len(reps)].pull(reps[i])
			}
		}
		for i, rp := range reps {
			if k, ok := rp.equal(want); !ok {
				t.Fatalf("iteration %d: replica %d differs from applying everything at key %s\n got  %s\n want %s",
					it, i, k, fmtEntry(rp[k]), fmtEntry(want[k]))
			}
		}
	}
}

// --- Reference model -------------------------------------------------------
//
// Written from DESIGN.md's rules, independently of compareWrites. For two
// writes with equal stamps the content decides, in field order: op,
// expiry, epoch, task state, value bytes.

func refContentCmp(a, b Delta) int {
	switch {
	case a.Op != b.Op:
		return sign(int64(a.Op) - int64(b.Op))
	case a.Expiry != b.Expiry:
		return sign(a.Expiry - b.Expiry)
	case a.Epoch != b.Epoch:
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	case a.Task != b.Task:
		return sign(int64(a.Task) - int64(b.Task))
	}
	return bytes.Compare(a.Value, b.Value)
}

func sign(x int64) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func refTaskRank(s TaskState) int {
	switch s {
	case TaskQueued:
		return 1
	case TaskRunning:
		return 2
	case TaskCancelRequested:
		return 3
	case TaskDone, TaskFailed, TaskCancelled:
		return 4
	}
	return 0
}

// refLoses reports whether write a loses to write b (a is "less").
func refLoses(ns Namespace, a, b Delta) bool {
	switch ns {
	case NSTask:
		// Terminal states rank highest and equal; then cancel-requested,
		// running, queued. Within a rank the stamp decides.
		if ra, rb := refTaskRank(a.Task), refTaskRank(b.Task); ra != rb {
			return ra < rb
		}
	case NSBlacklist:
		// Later HLC wins; at an equal HLC a remove beats an add.
		if a.Stamp.HLC != b.Stamp.HLC {
			return a.Stamp.HLC < b.Stamp.HLC
		}
		if aRm, bRm := a.Op == OpDelete, b.Op == OpDelete; aRm != bRm {
			return bRm
		}
	}
	// Stamp: HLC, then node id.
	if a.Stamp.HLC != b.Stamp.HLC {
		return a.Stamp.HLC < b.Stamp.HLC
	}
	if a.Stamp.Node != b.Stamp.Node {
		return a.Stamp.Node < b.Stamp.Node
	}
	return refContentCmp(a, b) < 0
}

// refRegister is the winning write: sort everything, take the last.
func refRegister(ds []Delta) Entry {
	if len(ds) == 0 {
		return Entry{}
	}
	ns := NamespaceOf(ds[0].Key)
	s := slices.Clone(ds)
	sort.SliceStable(s, func(i, j int) bool { return refLoses(ns, s[i], s[j]) })
	return Entry{Key: ds[0].Key, Deltas: []Delta{s[len(s)-1]}}
}

// refRecordLess is the order of records in a kernel set: stamp (HLC, then
// node id), then content.
func refRecordLess(a, b Delta) bool {
	if a.Stamp.HLC != b.Stamp.HLC {
		return a.Stamp.HLC < b.Stamp.HLC
	}
	if a.Stamp.Node != b.Stamp.Node {
		return a.Stamp.Node < b.Stamp.Node
	}
	return refContentCmp(a, b) < 0
}

// refSet is the set of distinct records of ds, sorted.
func refSet(ds []Delta) []Delta {
	s := slices.Clone(ds)
	sort.SliceStable(s, func(i, j int) bool { return refRecordLess(s[i], s[j]) })
	var uniq []Delta
	for _, d := range s {
		if n := len(uniq); n > 0 {
			p := uniq[n-1]
			if p.Stamp == d.Stamp && refContentCmp(p, d) == 0 {
				continue
			}
		}
		uniq = append(uniq, d)
	}
	return uniq
}

// refCounts: a claim counts if it expires after its own stamp.
func refCounts(d Delta) bool { return d.Op == OpClaim && d.Expiry > d.Stamp.HLC.WallMS() }

// refPrune keeps, of a sorted set of distinct records, what the rule says
// can still matter, record by record and by brute force. E is the highest
// epoch named, W the highest epoch of a counting claim (none: every epoch
// is at least W).
func refPrune(set []Delta) []Delta {
	var e, w uint64
	hasW := false
	for _, d := range set {
		e = max(e, d.Epoch)
		if refCounts(d) && (!hasW || d.Epoch > w) {
			w, hasW = d.Epoch, true
		}
	}
	sameClass := func(a, b Delta) bool { return a.Stamp.Node == b.Stamp.Node && a.Epoch == b.Epoch }
	var out []Delta
	for _, r := range set {
		if hasW && r.Epoch < w {
			continue
		}
		keep := true
		for _, o := range set {
			switch {
			case refCounts(r):
				// The smallest counting claim of each writer (in epoch W).
				keep = keep && !(refCounts(o) && sameClass(o, r) && refRecordLess(o, r))
			case r.Op == OpRenew:
				// The renewal of each writer and epoch with the greatest
				// expiry, then the greatest in record order.
				keep = keep && !(o.Op == OpRenew && sameClass(o, r) &&
					(o.Expiry > r.Expiry || (o.Expiry == r.Expiry && refRecordLess(r, o))))
			case r.Op == OpRelease:
				// The smallest release of each writer and epoch.
				keep = keep && !(o.Op == OpRelease && sameClass(o, r) && refRecordLess(o, r))
			default:
				// Anything else only names an epoch: the smallest one of
				// epoch E, while no counting claim is of E.
				other := !refCounts(o) && o.Op != OpRenew && o.Op != OpRelease
				keep = keep && r.Epoch == e && !(hasW && w == e) && !(other && o.Epoch == e && refRecordLess(o, r))
			}
		}
		if keep {
			out = append(out, r)
		}
	}
	return out
}

// refKernel is the pruned set of distinct records.
func refKernel(ds []Delta) Entry {
	if len(ds) == 0 {
		return Entry{}
	}
	return Entry{Key: ds[0].Key, Deltas: refPrune(refSet(ds))}
}

// refResolve is the lease rule over a raw set of records (any order,
// duplicates allowed), written as plainly as possible: the highest epoch
// among counting claims wins, and in it the smallest claim; the expiry is
// the greatest of the claim's and its writer's renewals of that epoch,
// whatever their stamps; Renewed is the renewal that gave it.
func refResolve(key string, ds []Delta) Lease {
	l := Lease{Kernel: key}
	var win *Delta
	for i, d := range ds {
		l.MaxEpoch = max(l.MaxEpoch, d.Epoch)
		if refCounts(d) && (win == nil || d.Epoch > win.Epoch || (d.Epoch == win.Epoch && refRecordLess(d, *win))) {
			win = &ds[i]
		}
	}
	if win == nil {
		return l
	}
	l.Holder, l.Epoch, l.Granted, l.Expiry, l.Job = win.Stamp.Node, win.Epoch, win.Stamp, win.Expiry, string(win.Value)
	var best *Delta
	for i, d := range ds {
		if d.Stamp.Node != l.Holder || d.Epoch != l.Epoch {
			continue
		}
		switch d.Op {
		case OpRelease:
			l.Released = true
		case OpRenew:
			if best == nil || d.Expiry > best.Expiry || (d.Expiry == best.Expiry && refRecordLess(*best, d)) {
				best = &ds[i]
			}
		}
	}
	if best != nil && best.Expiry > l.Expiry {
		l.Expiry, l.Renewed = best.Expiry, best.Stamp
	}
	return l
}

func refEntry(ds []Delta) Entry {
	if len(ds) > 0 && NamespaceOf(ds[0].Key) == NSKernel {
		return refKernel(ds)
	}
	return refRegister(ds)
}

func TestApplyMatchesReferenceModel(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		for _, key := range propKeys {
			ds := g.deltas(key)
			got, want := fold(t, ds), refEntry(ds)
			if !got.Equal(want) {
				t.Fatalf("iteration %d, key %s: Apply fold differs from the reference\n deltas %s\n got  %s\n want %s",
					it, key, fmtDeltas(ds), fmtEntry(got), fmtEntry(want))
			}
		}
	}
}

// The reference on hand-picked ties, so that the rules are pinned even if
// the random generator happens to miss a case.
func TestRegisterTieRules(t *testing.T) {
	at := func(key string, wall int64, logical uint16, node string, op Op) Delta {
		return Delta{Key: key, Stamp: Stamp{HLC: MakeHLC(wall, logical), Node: node}, Op: op}
	}
	task := func(key string, wall int64, node string, s TaskState) Delta {
		d := at(key, wall, 0, node, OpPut)
		d.Task = s
		return d
	}
	for _, tc := range []struct {
		name string
		ds   []Delta
		want int // index of the winner in ds
	}{
		{"svc later HLC", []Delta{at("svc/a/1", 10, 0, "n9", OpPut), at("svc/a/1", 10, 1, "n1", OpPut)}, 1},
		{"svc node breaks HLC tie", []Delta{at("svc/a/1", 10, 0, "n2", OpPut), at("svc/a/1", 10, 0, "n1", OpDelete)}, 0},
		{"node later stamp deletes", []Delta{at("node/x", 10, 0, "x", OpPut), at("node/x", 11, 0, "x", OpDelete)}, 1},
		{"node same stamp, delete after put by content", []Delta{at("node/x", 10, 0, "x", OpDelete), at("node/x", 10, 0, "x", OpPut)}, 0},
		{"bl remove wins HLC tie over higher node", []Delta{at("bl/l/1", 10, 0, "n9", OpPut), at("bl/l/1", 10, 0, "n1", OpDelete)}, 1},
		{"bl re-add after remove", []Delta{at("bl/l/1", 10, 0, "n1", OpDelete), at("bl/l/1", 10, 1, "n1", OpPut)}, 1},
		{"bl later remove", []Delta{at("bl/l/1", 10, 0, "n1", OpPut), at("bl/l/1", 11, 0, "n1", OpDelete)}, 1},
		{"bl two removes, node", []Delta{at("bl/l/1", 10, 0, "n2", OpDelete), at("bl/l/1", 10, 0, "n1", OpDelete)}, 0},
		{"task cancel-requested beats later running", []Delta{task("task/t", 10, "n1", TaskCancelRequested), task("task/t", 20, "n2", TaskRunning)}, 0},
		{"task terminal not undone by later queued", []Delta{task("task/t", 10, "n1", TaskDone), task("task/t", 20, "n1", TaskQueued)}, 0},
		{"task terminal states rank equal: stamp", []Delta{task("task/t", 20, "n1", TaskDone), task("task/t", 10, "n1", TaskCancelled)}, 0},
		{"task terminal states rank equal: later failed", []Delta{task("task/t", 10, "n1", TaskCancelled), task("task/t", 20, "n1", TaskFailed)}, 1},
		{"task cancelled beats cancel-requested", []Delta{task("task/t", 30, "n1", TaskCancelRequested), task("task/t", 20, "n1", TaskCancelled)}, 1},
		{"task running beats later queued", []Delta{task("task/t", 10, "n1", TaskRunning), task("task/t", 20, "n1", TaskQueued)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := Entry{Key: tc.ds[0].Key, Deltas: []Delta{tc.ds[tc.want]}}
			if ref := refRegister(tc.ds); !ref.Equal(want) {
				t.Fatalf("reference model picks %s, test expects %s", fmtEntry(ref), fmtEntry(want))
			}
			fwd := fold(t, tc.ds)
			rev := fold(t, []Delta{tc.ds[1], tc.ds[0]})
			if !fwd.Equal(want) || !rev.Equal(want) {
				t.Fatalf("got %s / %s (reversed), want %s", fmtEntry(fwd), fmtEntry(rev), fmtEntry(want))
			}
		})
	}
}

func TestResolveIsAFunctionOfTheSet(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		for _, key := range []string{"kernel/k1", "kernel/k2"} {
			ds := g.deltas(key)
			for range 1 + r.IntN(8) { // more records, for longer lease histories
				ds = append(ds, g.delta(key))
			}
			base := fold(t, ds)
			want := Resolve(base)
			checkLeaseInvariants(t, it, base, want)
			for range 4 {
				order := g.reordered(ds)
				if got := Resolve(fold(t, order)); got != want {
					t.Fatalf("iteration %d: Resolve depends on the order of records\n records %s\n order %s\n got  %+v\n want %+v",
						it, fmtDeltas(ds), fmtDeltas(order), got, want)
				}
			}
			// The same set reached by merging partial replicas.
			x, y := fold(t, g.subset(ds)), fold(t, g.subset(ds))
			x = Merge(Merge(x, y), base)
			if got := Resolve(x); got != want {
				t.Fatalf("iteration %d: Resolve after merges differs\n records %s\n got  %+v\n want %+v", it, fmtDeltas(ds), got, want)
			}
		}
	}
}

// checkLeaseInvariants checks what any verdict must satisfy.
func checkLeaseInvariants(t *testing.T, it int, e Entry, l Lease) {
	t.Helper()
	fail := func(msg string) {
		t.Fatalf("iteration %d: %s\n records %s\n lease %+v", it, msg, fmtEntry(e), l)
	}
	var maxEpoch uint64
	for _, d := range e.Deltas {
		maxEpoch = max(maxEpoch, d.Epoch)
	}
	if l.MaxEpoch != maxEpoch {
		fail(fmt.Sprintf("MaxEpoch %d, records name up to %d", l.MaxEpoch, maxEpoch))
	}
	if l.Kernel != e.Key {
		fail("Kernel is not the entry's key")
	}
	if l.Holder == "" {
		if l != (Lease{Kernel: e.Key, MaxEpoch: maxEpoch}) {
			fail("no holder, but other fields set")
		}
		for _, d := range e.Deltas {
			if d.Op == OpClaim && d.Expiry > d.Stamp.HLC.WallMS() {
				fail("no holder despite an eligible first claim")
			}
		}
		return
	}
	var claim *Delta
	for i, d := range e.Deltas {
		if d.Op == OpClaim && d.Stamp == l.Granted && d.Epoch == l.Epoch && d.Expiry > d.Stamp.HLC.WallMS() {
			claim = &e.Deltas[i] // the first such: records are sorted by stamp, then content
			break
		}
	}
	switch {
	case claim == nil:
		fail("Granted names no claim record of that epoch")
	case claim.Stamp.Node != l.Holder:
		fail("Holder is not the granted claim's node")
	case claim.Expiry <= claim.Stamp.HLC.WallMS():
		fail("won by a claim that expired at its own stamp")
	case l.Expiry < claim.Expiry:
		fail("effective expiry before the claim's own")
	case string(claim.Value) != l.Job:
		fail("Job is not the claim's value")
	case l.Epoch > l.MaxEpoch:
		fail("epoch above MaxEpoch")
	case l.Renewed.IsZero() && l.Expiry != claim.Expiry:
		fail("expiry extended without a renewal")
	}
	if !l.Renewed.IsZero() {
		var renewal *Delta
		for i, d := range e.Deltas {
			if d.Op == OpRenew && d.Stamp == l.Renewed && d.Epoch == l.Epoch && d.Expiry == l.Expiry {
				renewal = &e.Deltas[i]
			}
		}
		switch {
		case renewal == nil:
			fail("Renewed names no renewal of the epoch with the lease's expiry")
		case renewal.Stamp.Node != l.Holder:
			fail("Renewed is another writer's renewal")
		case renewal.Expiry <= claim.Expiry:
			fail("Renewed names a renewal that did not extend the claim")
		}
	}
}

// --- Kernel records: pruning ---------------------------------------------

// kernelHistory makes the records of a lease history over several writers
// and epochs: per epoch one to three claimants, each with a run of renewals
// and sometimes a release. An honest history is what agents write: every
// claim counts, stamps of a writer only grow, and a writer renews or
// releases only an epoch it claimed. Otherwise it adds claims that expire
// at their own stamp, renewals stamped before their claim or with falling
// expiries, random records with clashing stamps (some for an epoch nobody
// claimed) and a same-stamp forgery.
func (g gen) kernelHistory(key string, honest bool) []Delta {
	var ds []Delta
	last := map[string]HLC{}
	// stamp stamps a record of node at wall ms or, in an honest history,
	// after the node's last record; it moves *wall to the stamp's.
	stamp := func(node string, wall *int64) Stamp {
		h := MakeHLC(*wall, uint16(g.r.IntN(2)))
		if honest && h <= last[node] {
			h = last[node] + 1
		}
		last[node] = max(last[node], h)
		*wall = h.WallMS()
		return Stamp{HLC: h, Node: node}
	}
	wall := int64(1000)
	epochs := 1 + g.r.IntN(4)
	for ep := range uint64(epochs) {
		ep++
		for range 1 + g.r.IntN(3) {
			node := g.pick(propNodes)
			at := wall + g.r.Int64N(20)
			ttl := 1 + g.r.Int64N(40)
			if !honest && g.r.IntN(6) == 0 {
				ttl = -g.r.Int64N(3) // never counts
			}
			st := stamp(node, &at)
			ds = append(ds, Delta{Key: key, Stamp: st, Op: OpClaim, Epoch: ep, Expiry: at + ttl,
				Value: []byte(g.pick([]string{"", "nightly", "train"}))})
			for range g.r.IntN(7) {
				at += g.r.Int64N(15)
				if !honest && g.r.IntN(5) == 0 {
					at -= 30 // before the claim, or out of order
				}
				st := stamp(node, &at)
				ds = append(ds, Delta{Key: key, Stamp: st, Op: OpRenew, Epoch: ep, Expiry: at + g.r.Int64N(40)})
			}
			if g.r.IntN(3) == 0 {
				at += g.r.Int64N(10)
				ds = append(ds, Delta{Key: key, Stamp: stamp(node, &at), Op: OpRelease, Epoch: ep})
			}
		}
		wall += g.r.Int64N(60)
	}
	if !honest {
		for range g.r.IntN(5) {
			ds = append(ds, g.delta(key))
		}
		if g.r.IntN(3) == 0 {
			ds = append(ds, g.mutate(ds[g.r.IntN(len(ds))]))
		}
	}
	g.r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

// recordBound is how many records a kernel entry may hold, given the union
// of the records applied to it: three per writer and epoch from the
// winning epoch up (a claim, a renewal, a release) and one record naming
// the highest epoch.
func recordBound(all []Delta) int {
	var w uint64
	for _, d := range all {
		if refCounts(d) {
			w = max(w, d.Epoch)
		}
	}
	type we struct {
		node  string
		epoch uint64
	}
	pairs := map[we]bool{}
	for _, d := range all {
		if d.Epoch >= w {
			pairs[we{d.Stamp.Node, d.Epoch}] = true
		}
	}
	return 3*len(pairs) + 1
}

// writersAt counts the writers of records of the given epoch.
func writersAt(ds []Delta, epoch uint64) int {
	ws := map[string]bool{}
	for _, d := range ds {
		if d.Epoch == epoch {
			ws[d.Stamp.Node] = true
		}
	}
	return len(ws)
}

func TestKernelPruning(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	const key = "kernel/k1"
	for it := range propIters {
		honest := it%2 == 0
		ds := g.kernelHistory(key, honest)
		fail := func(msg string, got, want Entry) {
			t.Helper()
			t.Fatalf("iteration %d (honest %v): %s\n records %s\n got  %s\n want %s", it, honest, msg, fmtDeltas(ds), fmtEntry(got), fmtEntry(want))
		}
		union := refSet(ds)
		want := Entry{Key: key, Deltas: pruneRecords(union)}
		// The entry is the pruning of the union, by the implementation and
		// by the brute-force reference, whatever the order, duplicates and
		// way the records came together.
		if ref := refKernel(ds); !want.Equal(ref) {
			fail("pruneRecords differs from the reference", want, ref)
		}
		if again := (Entry{Key: key, Deltas: pruneRecords(want.Deltas)}); !again.Equal(want) {
			fail("pruning is not idempotent", again, want)
		}
		for range 3 {
			if got := fold(t, g.reordered(ds)); !got.Equal(want) {
				fail("applied in some order, the entry is not the pruning of the union", got, want)
			}
		}
		a, b, c := fold(t, g.subset(ds)), fold(t, g.subset(ds)), fold(t, g.subset(ds))
		a0, b0, c0 := cloneEntry(a), cloneEntry(b), cloneEntry(c)
		if x, y := Merge(a, b), Merge(b, a); !x.Equal(y) {
			fail("Merge(a,b) != Merge(b,a)", x, y)
		}
		if x, y := Merge(Merge(a, b), c), Merge(a, Merge(b, c)); !x.Equal(y) {
			fail("Merge(Merge(a,b),c) != Merge(a,Merge(b,c))", x, y)
		}
		if x := Merge(a, a); !x.Equal(a) {
			fail("Merge(a,a) != a", x, a)
		}
		if !a.Equal(a0) || !b.Equal(b0) || !c.Equal(c0) {
			fail("Merge modified an argument", a, a0)
		}
		// Replicas that each saw part of the records, merged, and then
		// the rest: the same entry.
		if got := Merge(Merge(Merge(a, b), c), fold(t, ds)); !got.Equal(want) {
			fail("merged replicas differ from the pruned union", got, want)
		}
		// The pruned entry resolves as the full set does.
		if got, full := Resolve(want), Resolve(Entry{Key: key, Deltas: union}); got != full {
			t.Fatalf("iteration %d: Resolve(pruned) = %+v, Resolve(full set) = %+v\n records %s", it, got, full, fmtDeltas(ds))
		}
		checkLeaseInvariants(t, it, want, Resolve(want))
		// The bound, and for an honest history the tight one: three
		// records per writer of the highest epoch, nothing of lower ones.
		for _, e := range []Entry{a, b, c, want} {
			if n := len(e.Deltas); n > recordBound(e.Deltas) {
				fail(fmt.Sprintf("%d records, above the bound %d", n, recordBound(e.Deltas)), e, want)
			}
		}
		if honest {
			maxEpoch := Resolve(want).MaxEpoch
			if n, bound := len(want.Deltas), 3*writersAt(ds, maxEpoch); n > bound {
				fail(fmt.Sprintf("honest history: %d records, above 3 × %d writers of epoch %d", n, bound/3, maxEpoch), want, want)
			}
			for _, d := range want.Deltas {
				if d.Epoch != maxEpoch {
					fail(fmt.Sprintf("honest history: a record of epoch %d survives epoch %d", d.Epoch, maxEpoch), want, want)
				}
			}
		}
	}
}

// kernelArrivals is a testing/quick argument: the records of a random
// lease history as they arrive at a replica, in random order, some
// duplicated and some never.
type kernelArrivals []Delta

func (kernelArrivals) Generate(r *mrand.Rand, _ int) reflect.Value {
	g := gen{rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))}
	ds := g.kernelHistory("kernel/k1", r.Intn(2) == 0)
	if r.Intn(3) == 0 {
		ds = g.reordered(ds) // everything arrives
	} else {
		ds = g.subset(ds)
	}
	return reflect.ValueOf(kernelArrivals(ds))
}

// Resolve over the pruned entry a replica keeps equals the plain rule over
// every record that arrived, and so does Resolve over the unpruned set.
func TestResolvePrunedMatchesReferenceOnFullSet(t *testing.T) {
	r := propRand(t)
	cfg := &quick.Config{MaxCount: 4 * propIters, Rand: mrand.New(mrand.NewSource(int64(r.Uint64())))}
	pruned := func(ds kernelArrivals) [2]Lease {
		e := Entry{Key: "kernel/k1"}
		for _, d := range ds {
			e, _ = e.Apply(d)
		}
		return [2]Lease{Resolve(e), Resolve(Entry{Key: "kernel/k1", Deltas: refSet(ds)})}
	}
	plain := func(ds kernelArrivals) [2]Lease {
		l := refResolve("kernel/k1", ds)
		return [2]Lease{l, l}
	}
	if err := quick.CheckEqual(pruned, plain, cfg); err != nil {
		var ce *quick.CheckEqualError
		if errors.As(err, &ce) {
			t.Fatalf("after %d histories: records %s\n Resolve(pruned), Resolve(full set): %+v\n reference: %+v",
				ce.Count, fmtDeltas(ce.In[0].(kernelArrivals)), ce.Out1[0], ce.Out2[0])
		}
		t.Fatal(err)
	}
}

// As records arrive, in any order, with drops and duplicates, the epoch a
// replica resolves and its MaxEpoch never go back, a holder once found is
// never lost again, and the entry stays within the bound.
func TestKernelEpochNeverGoesBackAsRecordsArrive(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		ds := g.kernelHistory("kernel/k1", it%2 == 0)
		arrivals := g.subset(ds)
		if it%3 == 0 {
			arrivals = g.reordered(ds)
		}
		var e Entry
		var prev Lease
		for i, d := range arrivals {
			next, changed := e.Apply(d)
			l := Resolve(next)
			switch {
			case l.MaxEpoch < prev.MaxEpoch:
				t.Fatalf("iteration %d: MaxEpoch went from %d to %d after %s\n before %s", it, prev.MaxEpoch, l.MaxEpoch, fmtDelta(d), fmtEntry(e))
			case prev.Holder != "" && (l.Holder == "" || l.Epoch < prev.Epoch):
				t.Fatalf("iteration %d: lease went from %+v to %+v after %s\n before %s", it, prev, l, fmtDelta(d), fmtEntry(e))
			case !changed && l != prev:
				t.Fatalf("iteration %d: no change reported, but the lease changed after %s", it, fmtDelta(d))
			case len(next.Deltas) > recordBound(arrivals[:i+1]):
				t.Fatalf("iteration %d: %d records, above the bound %d\n %s", it, len(next.Deltas), recordBound(arrivals[:i+1]), fmtEntry(next))
			}
			e, prev = next, l
		}
	}
}
