package watch

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

func ev(key string) Event { return Event{Delta: crdt.Delta{Key: key}} }

func TestHubFansOutByPrefixAndDropsTheSlow(t *testing.T) {
	var h Hub
	bl, slow, all := h.Watch("bl/", 8), h.Watch("", 2), h.Watch("", 100)
	if h.Len() != 3 {
		t.Fatalf("Len = %d, want 3", h.Len())
	}
	for i := range 10 {
		h.Notify(ev(fmt.Sprintf("svc/a/%d", i)))
	}
	h.Notify(ev("bl/l/1"))
	if len(bl.C()) != 1 || (<-bl.C()).Delta.Key != "bl/l/1" {
		t.Fatal("the bl/ watcher did not get exactly the bl/ event")
	}
	n := 0
	for range slow.C() { // closed once dropped
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), ErrSlow) {
		t.Fatalf("slow watcher: %d events, err %v; want 2 and ErrSlow", n, slow.Err())
	}
	if len(all.C()) != 11 || all.Err() != nil || h.Len() != 2 {
		t.Fatalf("fast watcher: %d events, err %v, Len %d", len(all.C()), all.Err(), h.Len())
	}
	all.Close()
	all.Close()
	if !errors.Is(all.Err(), ErrClosed) || h.Len() != 1 {
		t.Fatalf("after Close: err %v, Len %d", all.Err(), h.Len())
	}
	h.CloseAll()
	if _, open := <-bl.C(); open || !errors.Is(bl.Err(), ErrClosed) || h.Len() != 0 {
		t.Fatalf("after CloseAll: open %v, err %v, Len %d", open, bl.Err(), h.Len())
	}
	h.Notify(ev("bl/l/2")) // no one left: nothing to do, no panic
}
