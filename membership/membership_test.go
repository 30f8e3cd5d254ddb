package membership

import (
	"fmt"
	"testing"
	"time"
)

func TestDetectorTransitions(t *testing.T) {
	tab := New("self", Config{SuspectAfter: 3 * time.Second, DeadAfter: 10 * time.Second})
	if c, ok := tab.Heard("self", 0); ok {
		t.Fatalf("self reported a change %v", c)
	}
	if c, ok := tab.Heard("a", 1000); !ok || c.From != 0 || c.To != Alive {
		t.Fatalf("first heartbeat: %v %v", c, ok)
	}
	tab.Heard("b", 1000)
	if got := fmt.Sprint(tab.Tick(3999)); got != "[]" {
		t.Fatalf("tick 3999: %s", got)
	}
	if got := fmt.Sprint(tab.Tick(4000)); got != "[a: alive -> suspect b: alive -> suspect]" {
		t.Fatalf("tick 4000: %s", got)
	}
	if c, ok := tab.Heard("b", 5000); !ok || c.String() != "b: suspect -> alive" {
		t.Fatalf("b back: %v %v", c, ok)
	}
	if got := fmt.Sprint(tab.Tick(7999)); got != "[]" {
		t.Fatalf("tick 7999: %s", got)
	}
	if got := fmt.Sprint(tab.Tick(11000)); got != "[a: suspect -> dead b: alive -> suspect]" {
		t.Fatalf("tick 11000: %s", got)
	}
	if tab.State("a") != Dead || tab.State("self") != Alive || tab.State("zz") != 0 {
		t.Fatalf("states: a %v self %v zz %v", tab.State("a"), tab.State("self"), tab.State("zz"))
	}
	// Heard keeps the latest receive time.
	tab.Heard("a", 12000)
	tab.Heard("a", 2000)
	if got := fmt.Sprint(tab.Tick(14999)); got != "[]" || tab.State("a") != Alive {
		t.Fatalf("a after heartbeats at 12000 and 2000: %s %v", got, tab.State("a"))
	}
	tab.Tick(30000)
	if n := tab.Count(); n[Dead] != 2 {
		t.Fatalf("count %v", n)
	}
	if ps := tab.Peers(); len(ps) != 2 || ps[0].ID != "a" || ps[0].Heard != 12000 {
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

func TestDisconnectHintSuspectsButNeverKills(t *testing.T) {
	tab := New("self", Config{SuspectAfter: 3 * time.Second, DeadAfter: 10 * time.Second})
	if _, ok := tab.Disconnected("never-heard"); ok {
		t.Fatal("hint about an unknown node changed something")
	}
	tab.Heard("a", 0)
	if c, ok := tab.Disconnected("a"); !ok || c.String() != "a: alive -> suspect" {
		t.Fatalf("hint: %v %v", c, ok)
	}
	if got := fmt.Sprint(tab.Tick(1000)); got != "[]" || tab.State("a") != Suspect {
		t.Fatalf("tick undid the hint: %s %v", got, tab.State("a"))
	}
	if got := fmt.Sprint(tab.Tick(10000)); got != "[a: suspect -> dead]" {
		t.Fatalf("silence: %s", got)
	}
	tab = New("self", Config{SuspectAfter: 3 * time.Second, DeadAfter: 10 * time.Second})
	tab.Heard("b", 0)
	tab.Disconnected("b")
	if c, ok := tab.Heard("b", 500); !ok || c.To != Alive {
		t.Fatalf("heard after hint: %v %v", c, ok)
	}
	if got := fmt.Sprint(tab.Tick(600)); got != "[]" {
		t.Fatalf("tick after heard: %s", got)
	}
}
