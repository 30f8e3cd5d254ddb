package main

import (
	"slices"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store"
)

func TestVictimSkipsTheBootstrapAgent(t *testing.T) {
	var got []int
	for trial := range 7 {
		got = append(got, victimFor(trial, 4))
	}
	if want := []int{1, 2, 3, 1, 2, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("victims = %v, want %v", got, want)
	}
}

func TestFirstTimesKeepsTheFirstAndSkipsTheVictim(t *testing.T) {
	t0 := time.Unix(100, 0)
	f := newFirstTimes(4, 2)
	if _, ok := f.all(); ok {
		t.Fatal("all() true before any mark")
	}
	if !f.done(2) || f.done(0) || f.missing() != 0 {
		t.Fatalf("done(2)=%v done(0)=%v missing=%d", f.done(2), f.done(0), f.missing())
	}
	f.mark(0, t0.Add(5*time.Millisecond))
	f.mark(0, t0.Add(50*time.Millisecond)) // later: ignored
	f.mark(2, t0)                          // the skipped index: ignored
	f.mark(3, t0.Add(30*time.Millisecond))
	if f.missing() != 1 {
		t.Fatalf("missing = %d, want 1", f.missing())
	}
	f.mark(1, t0.Add(10*time.Millisecond))
	last, ok := f.all()
	if !ok || !last.Equal(t0.Add(30*time.Millisecond)) {
		t.Fatalf("all() = %v, %v; want the latest first time, t0+30ms", last, ok)
	}
	if f.missing() != -1 {
		t.Fatalf("missing = %d after all marked", f.missing())
	}
}

func TestHalves(t *testing.T) {
	for _, tc := range []struct {
		n           int
		left, right []int
	}{
		{6, []int{0, 1, 2}, []int{3, 4, 5}},
		{5, []int{0, 1}, []int{2, 3, 4}},
		{4, []int{0, 1}, []int{2, 3}},
	} {
		l, r := halves(tc.n)
		if !slices.Equal(l, tc.left) || !slices.Equal(r, tc.right) {
			t.Errorf("halves(%d) = %v | %v, want %v | %v", tc.n, l, r, tc.left, tc.right)
		}
	}
}

func TestEntriesDiff(t *testing.T) {
	put := func(key string, wall int64, node string) crdt.Entry {
		return crdt.Entry{Key: key, Deltas: []crdt.Delta{{Key: key, Op: crdt.OpPut,
			Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall, 0), Node: node}, Value: []byte("v")}}}
	}
	a := []crdt.Entry{put("bl/x/1", 1, "n1"), put("bl/x/2", 2, "n2")}
	if err := entriesDiff(a, slices.Clone(a)); err != nil {
		t.Errorf("equal lists: %v", err)
	}
	if err := entriesDiff(a, a[:1]); err == nil {
		t.Error("a missing key went unnoticed")
	}
	b := []crdt.Entry{a[0], put("bl/x/2", 3, "n2")}
	if err := entriesDiff(a, b); err == nil {
		t.Error("a different stamp went unnoticed")
	}
	if err := entriesDiff(nil, nil); err != nil {
		t.Errorf("empty lists: %v", err)
	}
}

func TestParsePhasesAndCounts(t *testing.T) {
	got, err := parsePhases(" 5,8, ")
	if err != nil || len(got) != 2 || !got[5] || !got[8] || got[1] {
		t.Errorf("parsePhases = %v, %v", got, err)
	}
	if got, err := parsePhases("11"); err != nil || !got[11] {
		t.Errorf("parsePhases(11) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "12", "x", "1,,12"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("parsePhases(%q) succeeded", bad)
		}
	}
	if c, err := parseCounts("-k", "10000, 100000"); err != nil || !slices.Equal(c, []int{10000, 100000}) {
		t.Errorf("parseCounts = %v, %v", c, err)
	}
	for _, bad := range []string{"", "0", "-5", "ten"} {
		if _, err := parseCounts("-k", bad); err == nil {
			t.Errorf("parseCounts(%q) succeeded", bad)
		}
	}
}

func TestDefaultsNote(t *testing.T) {
	if n := defaultsNote(&FailureResult{HeartbeatMs: 1000, SuspectAfterMs: 1500, DeadAfterMs: 4000}); n != " (the agent's defaults)" {
		t.Errorf("defaults: %q", n)
	}
	if n := defaultsNote(&FailureResult{HeartbeatMs: 200, SuspectAfterMs: 600, DeadAfterMs: 2000}); n == " (the agent's defaults)" {
		t.Errorf("short settings called the defaults")
	}
}

func TestKeysBesidesNodes(t *testing.T) {
	s := store.New()
	defer s.Close()
	for i, key := range []string{"node/a", "node/b", "node/c", "bl/l/1", "bl/l/2", "bl/l/3", "bl/l/4", "bl/l/5"} {
		s.Apply(crdt.Delta{Key: key, Op: crdt.OpPut, Stamp: crdt.Stamp{HLC: crdt.MakeHLC(int64(1000+i), 0), Node: "n"}, Value: []byte("v")})
	}
	if got := keysBesidesNodes(s, 5); got != 5 {
		t.Errorf("keysBesidesNodes(want 5) = %d, want 5 (node/ keys left out)", got)
	}
	if got := keysBesidesNodes(s, 100); got != 8 {
		t.Errorf("keysBesidesNodes(want 100) = %d, want Len() = 8 (an upper bound, no scan)", got)
	}
}
