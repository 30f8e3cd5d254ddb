package crdt

import (
	"strings"
	"testing"
)

func TestWhy(t *testing.T) {
	put := func(key, node string, wall int64) Delta {
		return Delta{Key: key, Stamp: stampAt(wall, node), Op: OpPut}
	}
	del := func(key, node string, wall int64) Delta {
		return Delta{Key: key, Stamp: stampAt(wall, node), Op: OpDelete}
	}
	task := func(node string, wall int64, s TaskState) Delta {
		return Delta{Key: "task/t", Stamp: stampAt(wall, node), Op: OpPut, Task: s}
	}
	for _, tc := range []struct {
		a, b Delta
		want string
	}{
		{put("svc/a/b", "n1", 20), put("svc/a/b", "n2", 10), "later clock"},
		{put("svc/a/b", "n2", 10), put("svc/a/b", "n1", 10), "higher node id"},
		{del("bl/x/1", "n1", 10), put("bl/x/1", "n2", 10), "remove wins"},
		{task("n1", 5, TaskDone), task("n2", 50, TaskRunning), "state done ranks above running"},
		{put("svc/a/b", "n1", 10), put("svc/a/b", "n2", 20), "it loses: later clock"},
		{put("svc/a/b", "n1", 10), put("svc/a/b", "n1", 10), "the same write"},
	} {
		if got := Why(tc.a, tc.b); !strings.Contains(got, tc.want) {
			t.Errorf("Why(%s, %s) = %q, want it to say %q", fmtDelta(tc.a), fmtDelta(tc.b), got, tc.want)
		}
	}
	for _, ns := range Namespaces {
		if r := Rule(ns); r == "" || r == "unknown namespace" {
			t.Errorf("Rule(%s) = %q", ns, r)
		}
	}
}

func TestExplainLeaseAgreesWithResolve(t *testing.T) {
	h6 := claimAt("h", 100, 6, 400)
	for _, tc := range []struct {
		name    string
		e       Entry
		reasons map[string]string // claim node -> part of its reason; every one must be there
	}{
		{"first claim wins, concurrent loses", kernelEntry(claimAt("a", 100, 1, 500), claimAt("b", 120, 1, 500)),
			map[string]string{"a": "won epoch 1: the first claim of the highest epoch", "b": "epoch 1 went to the earlier claim of a at 100.0"}},
		{"a higher epoch wins even over a live lease; the lower epoch's records go", kernelEntry(h6, claimAt("b", 150, 7, 700)),
			map[string]string{"b": "won epoch 7"}},
		{"release opens the next epoch", kernelEntry(h6, releaseAt("h", 200, 6), claimAt("a", 250, 7, 600)),
			map[string]string{"a": "won epoch 7: the first claim of the highest epoch"}},
		{"a claim that expires at once is never eligible", kernelEntry(claimAt("z", 100, 2, 100), claimAt("a", 120, 1, 500)),
			map[string]string{"z": "never eligible", "a": "won epoch 1"}},
		// Entry.Apply never keeps a lower epoch's claim; an entry built by
		// hand still gets a verdict for it.
		{"a lower epoch's claim is superseded", Entry{Key: leaseKey, Deltas: []Delta{h6, claimAt("b", 150, 7, 700)}},
			map[string]string{"h": "superseded: epoch 7 was claimed and a higher epoch wins", "b": "won epoch 7"}},
	} {
		l := Resolve(tc.e)
		vs := ExplainLease(tc.e)
		won := 0
		seen := map[string]bool{}
		for _, v := range vs {
			seen[v.Claim.Stamp.Node] = true
			if want, ok := tc.reasons[v.Claim.Stamp.Node]; ok && !strings.Contains(v.Reason, want) {
				t.Errorf("%s: claim of %s: reason %q, want it to say %q", tc.name, v.Claim.Stamp.Node, v.Reason, want)
			}
			if v.Won {
				won++
				if v.Claim.Stamp != l.Granted || v.Claim.Epoch != l.Epoch {
					t.Errorf("%s: ExplainLease's winner %s epoch %d, Resolve's %s epoch %d", tc.name, fmtDelta(v.Claim), v.Claim.Epoch, l.Granted.Node, l.Epoch)
				}
			}
		}
		for node := range tc.reasons {
			if !seen[node] {
				t.Errorf("%s: no verdict for the claim of %s", tc.name, node)
			}
		}
		if won != 1 || len(vs) != countClaims(tc.e.Deltas) || len(vs) != len(tc.reasons) {
			t.Errorf("%s: %d winners among %d verdicts for %d claims held, %d expected", tc.name, won, len(vs), countClaims(tc.e.Deltas), len(tc.reasons))
		}
	}
}

func countClaims(ds []Delta) int {
	n := 0
	for _, d := range ds {
		if d.Op == OpClaim {
			n++
		}
	}
	return n
}

// On random lease histories, ExplainLease names exactly Resolve's winner
// (or none when Resolve finds no holder) and gives every claim a verdict.
func TestExplainLeaseMatchesResolveOnRandomHistories(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		ds := g.leaseHistory()
		e := fold(t, ds)
		l := Resolve(e)
		vs := ExplainLease(e)
		var winners []Delta
		for _, v := range vs {
			if v.Reason == "" {
				t.Fatalf("iteration %d: claim %s has no reason", it, fmtDelta(v.Claim))
			}
			if v.Won {
				winners = append(winners, v.Claim)
			}
		}
		switch {
		case l.Holder == "" && len(winners) != 0:
			t.Fatalf("iteration %d: Resolve finds no holder, ExplainLease names %s\n records %s", it, fmtDeltas(winners), fmtEntry(e))
		case l.Holder != "" && (len(winners) != 1 || winners[0].Stamp != l.Granted || winners[0].Epoch != l.Epoch):
			t.Fatalf("iteration %d: Resolve: %s epoch %d; ExplainLease: %s\n records %s", it, l.Granted.Node, l.Epoch, fmtDeltas(winners), fmtEntry(e))
		}
		if len(vs) != countClaims(e.Deltas) {
			t.Fatalf("iteration %d: %d verdicts for %d claims", it, len(vs), countClaims(e.Deltas))
		}
	}
}

// Whatever order records arrive in, the epoch a replica shows never goes
// back: a fencing token, once seen, is never undercut.
func TestResolvedEpochNeverGoesBack(t *testing.T) {
	r := propRand(t)
	g := gen{r}
	for it := range propIters {
		ds := g.leaseHistory()
		var e Entry
		var last uint64
		for _, d := range g.reordered(ds) {
			e, _ = e.Apply(d)
			l := Resolve(e)
			if l.Holder != "" && l.Epoch < last {
				t.Fatalf("iteration %d: epoch went from %d to %d after %s\n records %s", it, last, l.Epoch, fmtDelta(d), fmtEntry(e))
			}
			if l.Holder != "" {
				last = l.Epoch
			}
		}
	}
}

// leaseHistory makes a random set of records for one kernel, longer than
// g.deltas alone, for long lease histories.
func (g gen) leaseHistory() []Delta {
	ds := g.deltas("kernel/k1")
	for range 1 + g.r.IntN(8) {
		ds = append(ds, g.delta("kernel/k1"))
	}
	return ds
}

func TestKVConflict(t *testing.T) {
	w := func(hlc int64, node string, ver uint64) Delta {
		return Delta{Key: "kv/config/x", Stamp: Stamp{HLC: MakeHLC(hlc, 0), Node: node}, Op: OpPut, Value: Encode(KVValue{Value: node, Version: ver})}
	}
	for _, c := range []struct {
		name          string
		winner, loser Delta
		want          bool
	}{
		{"a later version replaced an older one", w(20, "n2", 4), w(10, "n1", 3), false},
		{"two writes of one version", w(20, "n2", 4), w(10, "n1", 4), true},
		{"a later clock with a lower version", w(20, "n2", 3), w(10, "n1", 5), true},
		{"the same write", w(10, "n1", 3), w(10, "n1", 3), false},
	} {
		if got := KVConflict(c.winner, c.loser); got != c.want {
			t.Errorf("%s: KVConflict = %v, want %v", c.name, got, c.want)
		}
	}
	if KVConflict(Delta{Key: "svc/a/b"}, Delta{Key: "svc/a/b", Op: OpPut}) {
		t.Error("a svc write was called a kv conflict")
	}
}

func TestCheckKVPath(t *testing.T) {
	for _, p := range []string{"/a", "/config/app/env/name", "/x/y.z-1_2:3@4"} {
		if err := CheckKVPath(p); err != nil {
			t.Errorf("CheckKVPath(%q) = %v", p, err)
		}
		if err := CheckKey(KVKey(p)); err != nil {
			t.Errorf("CheckKey(%q) = %v", KVKey(p), err)
		}
	}
	for _, p := range []string{"", "a/b", "/", "/a//b", "/a/", "/a/b\n", "/" + strings.Repeat("x/", MaxKVDepth) + "y"} {
		if err := CheckKVPath(p); err == nil {
			t.Errorf("CheckKVPath(%q) accepted", p)
		}
	}
	if err := CheckKey("kv"); err == nil {
		t.Error(`CheckKey("kv") accepted`)
	}
}
