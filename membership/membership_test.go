package membership

import (
	"fmt"
	"testing"
	"time"
)

var testConfig = Config{SuspectAfter: time.Second, DeadAfter: 4 * time.Second}

func TestAccusationMakesSuspectThenDead(t *testing.T) {
	tab := New("self", testConfig)
	if _, ok := tab.Announced("self", 9, 0); ok {
		t.Fatal("self reported a change")
	}
	if c, ok := tab.Announced("a", 5, 1000); !ok || c.From != 0 || c.To != Alive {
		t.Fatalf("first entry: %v %v", c, ok)
	}
	if c, ok := tab.Accused("a", "x", 5, false, 2000); !ok || c.String() != "a: alive -> suspect" {
		t.Fatalf("accused: %v %v", c, ok)
	}
	if got := fmt.Sprint(tab.Tick(5999)); got != "[]" {
		t.Fatalf("tick before the timeout: %s", got)
	}
	if got := fmt.Sprint(tab.Tick(6000)); got != "[a: suspect -> dead]" {
		t.Fatalf("tick at the timeout: %s", got)
	}
	if tab.State("a") != Dead || tab.State("self") != Alive || tab.State("zz") != 0 {
		t.Fatalf("states: a %v self %v zz %v", tab.State("a"), tab.State("self"), tab.State("zz"))
	}
	// The same incarnation announced again does not bring it back: only a
	// higher one refutes.
	if _, ok := tab.Announced("a", 5, 6500); ok || tab.State("a") != Dead {
		t.Fatalf("same incarnation revived a: %v", tab.State("a"))
	}
	if c, ok := tab.Announced("a", 6, 7000); !ok || c.String() != "a: dead -> alive" {
		t.Fatalf("refutation: %v %v", c, ok)
	}
	// A late accusation of the refuted incarnation is moot.
	if _, ok := tab.Accused("a", "y", 5, true, 7100); ok || tab.State("a") != Alive {
		t.Fatalf("moot accusation changed a: %v", tab.State("a"))
	}
}

// TestRefutationBeforeTimeout: a suspect that announces a higher
// incarnation in time is never dead.
func TestRefutationBeforeTimeout(t *testing.T) {
	tab := New("self", testConfig)
	tab.Announced("a", 1, 0)
	tab.Accused("a", "x", 1, false, 100)
	if c, ok := tab.Announced("a", 2, 3000); !ok || c.String() != "a: suspect -> alive" {
		t.Fatalf("refutation: %v %v", c, ok)
	}
	if got := fmt.Sprint(tab.Tick(60000)); got != "[]" {
		t.Fatalf("refuted suspicion timed out: %s", got)
	}
}

// TestAccusersShortenTheTimeout: Lifeguard's rule, DeadAfter with one
// accuser down to DeadAfter/2 with 1+Confirmations.
func TestAccusersShortenTheTimeout(t *testing.T) {
	if got := testConfig.Timeout(1); got != 4*time.Second {
		t.Fatalf("one accuser: %v", got)
	}
	if got := testConfig.Timeout(1 + Confirmations); got != 2*time.Second {
		t.Fatalf("%d accusers: %v", 1+Confirmations, got)
	}
	if got := testConfig.Timeout(50); got != 2*time.Second {
		t.Fatalf("50 accusers: %v", got)
	}
	for n := 1; n < 1+Confirmations; n++ {
		if a, b := testConfig.Timeout(n), testConfig.Timeout(n+1); b >= a {
			t.Fatalf("timeout(%d) = %v, timeout(%d) = %v: not falling", n, a, n+1, b)
		}
	}
	tab := New("self", testConfig)
	tab.Announced("a", 1, 0)
	for i, acc := range []string{"w", "x", "y", "z"} {
		tab.Accused("a", acc, 1, false, int64(i))
	}
	if got := fmt.Sprint(tab.Tick(1999)); got != "[]" {
		t.Fatalf("before two seconds: %s", got)
	}
	if got := fmt.Sprint(tab.Tick(2000)); got != "[a: suspect -> dead]" {
		t.Fatalf("four accusers, two seconds after the first: %s", got)
	}
}

// TestDeadVerdictAndOldWords: a dead accusation is dead at once; an
// accuser's older word (a lower incarnation, or suspect after dead) does
// not undo its newer one.
func TestDeadVerdictAndOldWords(t *testing.T) {
	tab := New("self", testConfig)
	tab.Announced("a", 3, 0)
	if c, ok := tab.Accused("a", "x", 3, true, 10); !ok || c.String() != "a: alive -> dead" {
		t.Fatalf("dead verdict: %v %v", c, ok)
	}
	if _, ok := tab.Accused("a", "x", 3, false, 20); ok {
		t.Fatal("older suspect word undid a dead verdict")
	}
	if _, ok := tab.Accused("a", "x", 2, false, 30); ok {
		t.Fatal("accusation of an older incarnation changed a")
	}
	// An accusation of a node never announced is kept: its entry may come
	// later, and then it is suspect at once.
	if c, ok := tab.Accused("b", "x", 7, false, 0); !ok || c.To != Suspect {
		t.Fatalf("accused before announced: %v %v", c, ok)
	}
	if _, ok := tab.Announced("b", 7, 10); ok || tab.State("b") != Suspect {
		t.Fatalf("entry of the accused incarnation: %v", tab.State("b"))
	}
}

// TestAnsweredIncarnationRefutes: a direct answer carries the node's
// incarnation, which refutes older accusations; an indirect answer (0)
// does not.
func TestAnsweredIncarnationRefutes(t *testing.T) {
	tab := New("self", testConfig)
	tab.Announced("a", 1, 0)
	tab.Accused("a", "x", 1, false, 0)
	if _, ok := tab.Answered("a", 0, 100); ok || tab.State("a") != Suspect {
		t.Fatalf("indirect answer: %v", tab.State("a"))
	}
	if c, ok := tab.Answered("a", 2, 200); !ok || c.To != Alive {
		t.Fatalf("direct answer at a higher incarnation: %v %v", c, ok)
	}
	if p, _ := tab.Get("a"); p.Heard != 200 || p.Inc != 2 {
		t.Fatalf("peer %+v", p)
	}
}

func TestUnreachableCountsRecentlyAlive(t *testing.T) {
	tab := New("self", testConfig)
	for _, id := range []string{"a", "b", "c"} {
		tab.Announced(id, 1, 0)
	}
	tab.Accused("a", "x", 1, true, 1000)
	tab.Accused("b", "x", 1, true, 1000)
	if lost, seen := tab.Unreachable(2000, 30000); lost != 2 || seen != 3 {
		t.Fatalf("lost %d seen %d", lost, seen)
	}
	tab.Tick(40000)
	if lost, seen := tab.Unreachable(40000, 30000); lost != 0 || seen != 1 {
		t.Fatalf("after the window: lost %d seen %d", lost, seen)
	}
	if n := tab.Count(); n[Dead] != 2 || n[Alive] != 1 {
		t.Fatalf("count %v", n)
	}
	if ps := tab.Peers(); len(ps) != 3 || ps[0].ID != "a" || ps[0].Accusers != 1 {
		t.Fatalf("peers %+v", ps)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{}, {SuspectAfter: time.Second, DeadAfter: time.Second}, {SuspectAfter: -1, DeadAfter: time.Second}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
