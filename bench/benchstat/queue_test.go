package benchstat

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestQueueFigures(t *testing.T) {
	l := NewQueueLog()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for i := range 4 {
		l.Submitted(fmt.Sprintf("t%d", i), at(10*i))
	}
	l.SubmitSpan(at(0), at(40)) // 4 tasks in 40 ms: 100/s
	l.Taken("t0", 5*time.Millisecond)
	l.Taken("t1", 7*time.Millisecond)
	l.Taken("t1", 9*time.Millisecond) // t1 twice
	l.Taken("t2", 6*time.Millisecond)
	l.Empty()
	if n := l.Done("t0", at(100), 2*time.Millisecond); n != 1 {
		t.Fatalf("Done = %d, want 1", n)
	}
	l.Done("t1", at(150), time.Millisecond)
	if n := l.Done("t1", at(400), 3*time.Millisecond); n != 2 { // a second done of t1 counts once, at its first
		t.Fatalf("Done = %d, want 2", n)
	}
	l.Done("t2", at(200), time.Millisecond)
	l.Done("stray", at(900), time.Millisecond) // never submitted: not counted
	f := l.Figures()
	want := QueueFigures{Tasks: 4, SubmitSeconds: 0.04, SubmitPerSec: 100, Done: 3, DrainSeconds: 0.2, DrainPerSec: 15,
		Take:     Summary{N: 4, P50Ms: 6, P99Ms: 9, MaxMs: 9},
		Ack:      Summary{N: 5, P50Ms: 1, P99Ms: 3, MaxMs: 3},
		EndToEnd: Summary{N: 3, P50Ms: 140, P99Ms: 180, MaxMs: 180},
		Takes:    4, EmptyTakes: 1, TakenTwice: 1, Lost: 1}
	if f != want {
		t.Fatalf("Figures =\n %+v, want\n %+v", f, want)
	}
	if f := NewQueueLog().Figures(); f != (QueueFigures{}) {
		t.Fatalf("empty log: %+v", f)
	}
}

// TestQueueLogConcurrent: workers and a submitter record at once (run
// with -race).
func TestQueueLogConcurrent(t *testing.T) {
	l := NewQueueLog()
	const n = 200
	ids := make(chan string, n)
	began := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ids)
		for i := range n {
			id := fmt.Sprint(i)
			l.Submitted(id, time.Now())
			ids <- id
		}
		l.SubmitSpan(began, time.Now())
	})
	for range 3 {
		wg.Go(func() {
			for id := range ids {
				l.Taken(id, time.Millisecond)
				l.Done(id, time.Now(), time.Millisecond)
			}
		})
	}
	wg.Wait()
	f := l.Figures()
	if f.Tasks != n || f.Done != n || f.Takes != n || f.TakenTwice != 0 || f.Lost != 0 || f.EndToEnd.N != n {
		t.Fatalf("Figures = %+v", f)
	}
}

func TestQueuePayload(t *testing.T) {
	p := QueuePayload("q000042", 200)
	if len(p) != 200 {
		t.Fatalf("len = %d", len(p))
	}
	if id, ok := QueuePayloadID(p); !ok || id != "q000042" {
		t.Fatalf("QueuePayloadID = %q %v", id, ok)
	}
	if p := QueuePayload("long-id", 3); string(p) != "long-id " {
		t.Fatalf("short payload = %q", p)
	}
	for _, bad := range []string{"", " x", "noid"} {
		if _, ok := QueuePayloadID([]byte(bad)); ok {
			t.Errorf("QueuePayloadID(%q) ok", bad)
		}
	}
}
