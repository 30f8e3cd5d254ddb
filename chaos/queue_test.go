package chaos

import (
	"testing"
	"time"
)

func TestQueue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	fault := []Interval{{From: at(100), To: at(110)}}
	takes := []Take{
		// a: taken once, done.
		{Task: "a", Agent: 0, Attempt: 1, At: at(1), End: at(2), Done: true},
		// b: its worker's done was refused (it was paused past its
		// visibility timeout); retaken later: at-least-once, not twice.
		{Task: "b", Agent: 1, Attempt: 1, At: at(3), End: at(9)},
		{Task: "b", Agent: 2, Attempt: 2, At: at(10), End: at(11), Done: true},
		// c: taken again while the first worker ran, in calm: a violation.
		{Task: "c", Agent: 0, Attempt: 1, At: at(20), End: at(25), Done: true},
		{Task: "c", Agent: 1, Attempt: 2, At: at(21), End: at(22), Done: true},
		// d: taken again after it ended done, during a fault: counted only.
		{Task: "d", Agent: 0, Attempt: 1, At: at(101), End: at(102), Done: true},
		{Task: "d", Agent: 3, Attempt: 1, At: at(105), End: at(106), Done: true},
		// e: its worker stopped before its done call: a retake.
		{Task: "e", Agent: 0, Attempt: 1, At: at(30)},
		{Task: "e", Agent: 1, Attempt: 2, At: at(40), End: at(41), Done: true},
	}
	ended := map[string]string{"a": "done", "b": "done", "c": "done", "d": "done", "e": "failed"}
	f, vs := Queue([]string{"a", "b", "c", "d", "e", "lost"}, ended, takes, fault)
	want := QueueFindings{Submitted: 6, Done: 4, Failed: 1, Lost: 1, Takes: 9, Retaken: 2, Twice: 2, TwiceCalm: 1}
	f.RetakeAfter = nil
	if f.Submitted != want.Submitted || f.Done != want.Done || f.Failed != want.Failed || f.Lost != want.Lost || f.Takes != want.Takes ||
		f.Retaken != want.Retaken || f.Twice != want.Twice || f.TwiceCalm != want.TwiceCalm {
		t.Fatalf("findings %+v, want %+v", f, want)
	}
	checks := map[string]int{}
	for _, v := range vs {
		checks[v.Check]++
	}
	if checks[CheckQueueLost] != 1 || checks[CheckQueueTwice] != 1 || len(vs) != 2 {
		t.Fatalf("violations %v", vs)
	}
}
