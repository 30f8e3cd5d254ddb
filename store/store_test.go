package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/watch"
)

func put(key string, hlc uint64, node, val string) crdt.Delta {
	return crdt.Delta{Key: key, Stamp: crdt.Stamp{HLC: crdt.HLC(hlc), Node: node}, Op: crdt.OpPut, Value: []byte(val)}
}

func TestApplyKeepsWinnerAndReportsChanges(t *testing.T) {
	s := New()
	if got := s.Apply(put("svc/a/1", 10, "n1", "x")); len(got) != 1 {
		t.Fatalf("first write: changed %d, want 1", len(got))
	}
	if got := s.Apply(put("svc/a/1", 5, "n2", "old")); len(got) != 0 {
		t.Fatalf("older write changed the entry")
	}
	s.Apply(put("svc/a/1", 10, "n1", "x")) // duplicate
	e, ok := s.Get("svc/a/1")
	if !ok || string(e.Winner().Value) != "x" {
		t.Fatalf("Get = %+v, %v; want value x", e, ok)
	}
}

func TestListByPrefixSorted(t *testing.T) {
	s := New()
	for _, k := range []string{"svc/b/1", "bl/x/1", "svc/a/2", "svc/a/1"} {
		s.Apply(put(k, 1, "n", ""))
	}
	var keys []string
	for _, e := range s.List("svc/") {
		keys = append(keys, e.Key)
	}
	if fmt.Sprint(keys) != "[svc/a/1 svc/a/2 svc/b/1]" {
		t.Fatalf("List(svc/) = %v", keys)
	}
	if s.Len() != 4 {
		t.Fatalf("Len = %d, want 4", s.Len())
	}
}

func TestWatchSeesMatchingChangesInOrder(t *testing.T) {
	s := New()
	w := s.Watch("bl/", 8)
	defer w.Close()
	s.Apply(put("svc/a/1", 1, "n", ""), put("bl/l/1", 1, "n", "a"), put("bl/l/1", 2, "n", "b"), put("bl/l/1", 1, "n", "stale"))
	for _, want := range []string{"a", "b"} {
		ev := <-w.C()
		if string(ev.Delta.Value) != want || ev.Entry.Key != "bl/l/1" {
			t.Fatalf("event = %+v, want value %q", ev, want)
		}
	}
	select {
	case ev := <-w.C():
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func TestSlowWatcherIsDroppedNotBlocking(t *testing.T) {
	s := New()
	slow := s.Watch("", 2)
	fast := s.Watch("", 100)
	for i := range 10 {
		s.Apply(put(fmt.Sprintf("svc/a/%d", i), 1, "n", ""))
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), watch.ErrSlow) {
		t.Fatalf("slow watcher got %d events, err %v; want 2, watch.ErrSlow", n, slow.Err())
	}
	if len(fast.C()) != 10 || fast.Err() != nil {
		t.Fatalf("fast watcher has %d events, err %v", len(fast.C()), fast.Err())
	}
	fast.Close()
	fast.Close()
	if !errors.Is(fast.Err(), watch.ErrClosed) || s.Watchers() != 0 {
		t.Fatalf("after Close: err %v, watchers %d", fast.Err(), s.Watchers())
	}
}
