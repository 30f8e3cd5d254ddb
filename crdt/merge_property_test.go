package crdt

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
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

// refKernel is the set of distinct records, sorted by stamp then content.
func refKernel(ds []Delta) Entry {
	if len(ds) == 0 {
		return Entry{}
	}
	s := slices.Clone(ds)
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Stamp.HLC != b.Stamp.HLC {
			return a.Stamp.HLC < b.Stamp.HLC
		}
		if a.Stamp.Node != b.Stamp.Node {
			return a.Stamp.Node < b.Stamp.Node
		}
		return refContentCmp(a, b) < 0
	})
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
	return Entry{Key: ds[0].Key, Deltas: uniq}
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
