package watch

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

// keys reads f until it is caught up and returns the keys it read.
func keys(t *testing.T, f *Follower) ([]string, Cursor) {
	t.Helper()
	var out []string
	var at Cursor
	for {
		evs, c, err := f.Next(3)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		at = c
		if len(evs) == 0 {
			return out, at
		}
		for _, ev := range evs {
			out = append(out, ev.Key)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, s := range []string{"", "0a1b-0", "0a1b-18446744073709551615"} {
		c, err := ParseCursor(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseCursor(%q) = %v, %v; String %q", s, c, err, c.String())
		}
	}
	for _, s := range []string{"x", "-1", "ab-", "ab-x", "ab--1"} {
		if _, err := ParseCursor(s); err == nil {
			t.Errorf("ParseCursor(%q) accepted", s)
		}
	}
}

func TestFollowerResumesAfterItsCursorByPrefix(t *testing.T) {
	var h Hub
	h.Notify(ev("svc/a/1"))
	f, ok := h.Follow("svc/", Cursor{})
	if ok {
		t.Fatal("a follower with no cursor resumed: it needs a snapshot")
	}
	h.Notify(ev("bl/l/1"))
	h.Notify(ev("svc/a/2"))
	h.Publish(Event{Key: "svc/a/2", Note: "owner-down"})
	got, at := keys(t, f)
	if fmt.Sprint(got) != "[svc/a/2 svc/a/2]" || at.Rev != 4 {
		t.Fatalf("read %v up to %v, want [svc/a/2 svc/a/2] up to rev 4", got, at)
	}
	f.Close()
	f.Close()
	if _, _, err := f.Next(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}

	// Reconnect after rev 2 (a cursor given mid-way): events 3 and 4 of
	// svc/, not the bl/ one, nothing before.
	h.Notify(ev("svc/a/3"))
	g, ok := h.Follow("svc/", Cursor{Gen: at.Gen, Rev: 2})
	if !ok {
		t.Fatal("a cursor the history covers did not resume")
	}
	if got, _ := keys(t, g); fmt.Sprint(got) != "[svc/a/2 svc/a/2 svc/a/3]" {
		t.Fatalf("resumed read %v", got)
	}
	if h.Len() != 1 {
		t.Fatalf("Len = %d, want 1", h.Len())
	}
}

func TestFollowerTooOldForeignOrBehindNeedsResync(t *testing.T) {
	var h Hub
	h.SetHistory(4)
	cur := h.Cursor()
	for i := range 4 {
		h.Notify(ev(fmt.Sprintf("k/%d", i)))
	}
	if _, ok := h.Follow("", cur); !ok {
		t.Fatal("rev 0 with 4 events kept in a ring of 4 did not resume")
	}
	h.Notify(ev("k/4")) // rev 1 leaves the ring
	if _, ok := h.Follow("", cur); ok {
		t.Fatal("a cursor older than the history resumed")
	}
	if _, ok := h.Follow("", Cursor{Gen: "feedface", Rev: 5}); ok {
		t.Fatal("a foreign cursor resumed")
	}
	if _, ok := h.Follow("", Cursor{Gen: cur.Gen, Rev: 99}); ok {
		t.Fatal("a cursor from the future resumed")
	}

	// A follower that falls more than the ring behind gets ErrBehind, and
	// reads again once restarted.
	f, _ := h.Follow("k/", h.Cursor())
	for i := range 5 {
		h.Notify(ev(fmt.Sprintf("k/x%d", i)))
	}
	if _, _, err := f.Next(10); !errors.Is(err, ErrBehind) {
		t.Fatalf("Next of a follower 5 behind a ring of 4: %v, want ErrBehind", err)
	}
	if c := h.Restart(f); c != h.Cursor() {
		t.Fatalf("Restart = %v, want %v", c, h.Cursor())
	}
	h.Notify(ev("k/y"))
	if got, _ := keys(t, f); fmt.Sprint(got) != "[k/y]" {
		t.Fatalf("after restart read %v", got)
	}

	// Forget (a reset store): a new generation, and followers resync.
	old := h.Cursor()
	h.Forget()
	if _, _, err := f.Next(1); !errors.Is(err, ErrBehind) {
		t.Fatalf("Next after Forget: %v, want ErrBehind", err)
	}
	if _, ok := h.Follow("", old); ok || h.Cursor().Gen == old.Gen {
		t.Fatal("a cursor from before Forget resumed")
	}
	h.CloseAll()
	if _, _, err := f.Next(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after CloseAll: %v", err)
	}
}

func TestFollowerWakesOnlyForItsPrefix(t *testing.T) {
	var h Hub
	f, _ := h.Follow("bl/", Cursor{})
	h.Notify(ev("svc/a/1"))
	select {
	case <-f.Ready():
		t.Fatal("woken by another prefix")
	default:
	}
	h.Notify(ev("bl/l/1"))
	select {
	case <-f.Ready():
	default:
		t.Fatal("not woken by its prefix")
	}
}

func TestRefresh(t *testing.T) {
	put := func(node string, wall int64, v string, exp int64) crdt.Delta {
		return crdt.Delta{Key: "bl/l/x", Op: crdt.OpPut, Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall, 0), Node: node}, Value: []byte(v), Expiry: exp}
	}
	for _, c := range []struct {
		name      string
		prev, now crdt.Delta
		want      bool
	}{
		{"new ttl", put("a", 1000, "v", 2000), put("a", 1500, "v", 3000), true},
		{"same write again", put("a", 1000, "v", 0), put("a", 1500, "v", 0), true},
		{"new value", put("a", 1000, "v", 2000), put("a", 1500, "w", 3000), false},
		{"other writer", put("a", 1000, "v", 2000), put("b", 1500, "v", 3000), false},
		{"after it expired", put("a", 1000, "v", 2000), put("a", 2500, "v", 3000), false},
		{"first write", crdt.Delta{}, put("a", 1500, "v", 3000), false},
		{"delete", put("a", 1000, "v", 2000), crdt.Delta{Key: "bl/l/x", Op: crdt.OpDelete, Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1500, 0), Node: "a"}}, false},
	} {
		if got := IsRefresh(c.prev, c.now); got != c.want {
			t.Errorf("%s: Refresh = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestHistoryGrowsAndKeepsItsEvents: the ring starts small and grows up to
// its size without losing or reordering events, then lets the oldest go.
func TestHistoryGrowsAndKeepsItsEvents(t *testing.T) {
	var h Hub
	h.SetHistory(300)
	start := h.Cursor()
	for i := range 300 {
		h.Notify(ev(fmt.Sprintf("k/%03d", i)))
	}
	f, ok := h.Follow("", start)
	if !ok {
		t.Fatal("300 events in a history of 300 did not resume from the start")
	}
	got, _ := keys(t, f)
	if len(got) != 300 || got[0] != "k/000" || got[299] != "k/299" {
		t.Fatalf("read %d events: %v … %v", len(got), got[:1], got[len(got)-1:])
	}
	for i := range got {
		if got[i] != fmt.Sprintf("k/%03d", i) {
			t.Fatalf("event %d is %s", i, got[i])
		}
	}
	h.Notify(ev("k/300"))
	if _, ok := h.Follow("", start); ok {
		t.Fatal("the 301st event did not push the first out")
	}
	if g, ok := h.Follow("", Cursor{Gen: start.Gen, Rev: 1}); !ok {
		t.Fatal("a cursor at the oldest kept event's predecessor did not resume")
	} else if got, _ := keys(t, g); len(got) != 300 || got[0] != "k/001" {
		t.Fatalf("after the ring turned: %d events from %v", len(got), got[:1])
	}
}
