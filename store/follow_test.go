package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSnapshotThenFollowHasNoGap races writers with a follower's start:
// every write is seen exactly once, in the snapshot or as an event.
func TestSnapshotThenFollowHasNoGap(t *testing.T) {
	const writers, each = 4, 500
	s := New()
	s.Hub().SetHistory(writers * each) // this test is about the gap, not the ring
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				s.Apply(put(fmt.Sprintf("k/%d/%d", w, i), uint64(i+1), "n", ""))
			}
		})
	}
	close(start)
	for s.Len() < writers*each/4 { // start once writes are under way
		time.Sleep(time.Millisecond / 10)
	}
	s.Apply(put("other/x", 1, "n", "")) // another prefix: never seen
	f, ok := s.Follow("k/", s.Hub().Cursor())
	if !ok {
		t.Fatal("the present cursor did not resume")
	}
	defer f.Close()
	snap, at := s.Snapshot(f)
	if len(snap) == writers*each {
		t.Skip("the writers finished before the snapshot: nothing raced")
	}
	seen := map[string]int{}
	for _, e := range snap {
		seen[e.Key]++
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < writers*each && time.Now().Before(deadline) {
		evs, c, err := f.Next(64)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rev < at.Rev {
			t.Fatalf("cursor went back: %v after snapshot at %v", c, at)
		}
		for _, ev := range evs {
			if ev.Rev <= at.Rev {
				t.Fatalf("event %d of %s is older than the snapshot at %v", ev.Rev, ev.Key, at)
			}
			seen[ev.Key]++
		}
		if len(evs) == 0 {
			select {
			case <-f.Ready():
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	wg.Wait()
	if len(seen) != writers*each {
		t.Fatalf("saw %d keys, want %d", len(seen), writers*each)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
}
