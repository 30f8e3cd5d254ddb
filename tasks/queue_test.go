package tasks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

func queued(id string, v crdt.TaskValue) Task {
	return Decode(crdt.Delta{Key: crdt.TaskKey(id), Stamp: crdt.Stamp{HLC: 1, Node: other}, Op: crdt.OpPut, Task: crdt.TaskQueued, Value: crdt.Encode(v)})
}

func lease(holder string, epoch uint64, expiry int64, released bool) crdt.Lease {
	return crdt.Lease{Kernel: crdt.KernelKey(LeaseKernel("t")), Holder: holder, Epoch: epoch, MaxEpoch: epoch, Expiry: expiry, Released: released}
}

func TestSubmit(t *testing.T) {
	d, err := Submit(nil, "t", Submission{Queue: "q", Payload: []byte("x"), Priority: 2, NowMS: 7})
	v := Decode(d).Value
	if err != nil || d.Task != crdt.TaskQueued || v.Owner != "" || v.Queue != "q" || string(v.Payload) != "x" || v.Priority != 2 || v.SubmitMS != 7 || v.MaxAttempts != DefaultMaxAttempts {
		t.Fatalf("submit: %+v %+v %v", d, v, err)
	}
	cur := Decode(d)
	if _, err := Submit(&cur, "t", Submission{Queue: "q"}); !errors.Is(err, ErrDenied) {
		t.Errorf("submit of an id in use: %v, want denied", err)
	}
	if _, err := Submit(nil, "t", Submission{Queue: "q", MaxAttempts: -1}); !errors.Is(err, ErrBadState) {
		t.Errorf("negative max attempts: %v", err)
	}
}

// TestAttemptLifecycle walks a task through take, loss of its worker,
// retake and dead letter, checking Available, Held and State at each step.
func TestAttemptLifecycle(t *testing.T) {
	const skew = 100
	tk := queued("t", crdt.TaskValue{Queue: "q", MaxAttempts: 2})
	none := crdt.Lease{}
	if !Available(tk, none, 1000, skew) || State(tk, none, 1000, skew) != crdt.TaskQueued {
		t.Fatal("a new task is not available")
	}
	// Taken: the lease is held, even before "running" arrives.
	held := lease(me, 1, 2000, false)
	if Available(tk, held, 1000, skew) || !Held(tk, held, 1000, skew) {
		t.Fatal("a task whose lease is held is available")
	}
	run := Decode(Take(tk, me, 1))
	if run.Delta.Task != crdt.TaskRunning || run.Value.Owner != me || run.Value.Attempt != 1 || run.Value.Epoch != 1 || run.Value.Queue != "q" {
		t.Fatalf("take: %+v", run)
	}
	if !Held(run, held, 1500, skew) || State(run, held, 1500, skew) != crdt.TaskRunning || Available(run, held, 1500, skew) {
		t.Fatal("a running task with its lease is not held")
	}
	// The lease runs out (past the skew margin): queued again, available.
	for _, l := range []crdt.Lease{lease(me, 1, 2000, true), held} {
		now := int64(1500)
		if !l.Released {
			now = 2000 + skew
		}
		if Held(run, l, now, skew) || !Available(run, l, now, skew) || State(run, l, now, skew) != crdt.TaskQueued {
			t.Errorf("lease %+v at %d: the task is not queued again", l, now)
		}
	}
	// Within the skew margin another node must not take it yet.
	if Available(run, held, 2000+skew-1, skew) {
		t.Error("available within the skew margin")
	}
	// A lease of another holder or epoch does not hold this attempt.
	if Held(run, lease(other, 2, 5000, false), 1500, skew) {
		t.Error("another worker's lease holds this attempt")
	}
	if Exhausted(run) {
		t.Fatal("exhausted after 1 of 2 attempts")
	}
	run2 := Decode(Take(run, other, 2))
	if run2.Value.Attempt != 2 || !Exhausted(run2) {
		t.Fatalf("second take: %+v", run2.Value)
	}
	dl := DeadLetter(run2, me)
	if v := Decode(dl).Value; dl.Task != crdt.TaskFailed || v.Owner != me || v.Result == "" || v.Attempt != 2 {
		t.Fatalf("dead letter: %+v %+v", dl, v)
	}
	// Ended tasks and assigned tasks are never available.
	for _, d := range []crdt.Delta{dl, write("t", crdt.TaskQueued, crdt.TaskValue{Owner: me})} {
		if Available(Decode(d), none, 1000, skew) {
			t.Errorf("%+v is available", d)
		}
	}
}

func TestFinish(t *testing.T) {
	run := Decode(Take(queued("t", crdt.TaskValue{Queue: "q"}), me, 3))
	d, err := Finish(run, me, true, crdt.TaskDone, "ok")
	if err != nil || d.Task != crdt.TaskDone || Decode(d).Value.Result != "ok" || Decode(d).Value.Epoch != 3 {
		t.Fatalf("finish: %+v %v", d, err)
	}
	for _, tc := range []struct {
		name  string
		cur   Task
		self  string
		held  bool
		state crdt.TaskState
		want  error
	}{
		{"not the taker", run, other, true, crdt.TaskDone, ErrDenied},
		{"lease gone", run, me, false, crdt.TaskDone, ErrDenied},
		{"ended", Decode(d), me, true, crdt.TaskFailed, ErrDenied},
		{"bad state", run, me, true, crdt.TaskRunning, ErrBadState},
	} {
		if _, err := Finish(tc.cur, tc.self, tc.held, tc.state, ""); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestOrder: any input order sorts into priority, then submission, then id.
func TestOrder(t *testing.T) {
	var want []Task
	for p := 2; p >= 0; p-- {
		for ms := int64(1); ms <= 3; ms++ {
			for _, id := range []string{"a", "b"} {
				want = append(want, queued(fmt.Sprintf("%d-%d-%s", p, ms, id), crdt.TaskValue{Queue: "q", Priority: p, SubmitMS: ms}))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got := slices.Clone(want)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		Order(got)
		for i := range got {
			if got[i].Delta.Key != want[i].Delta.Key {
				t.Fatalf("position %d: %s, want %s", i, got[i].Delta.Key, want[i].Delta.Key)
			}
		}
	}
}

func TestPick(t *testing.T) {
	var ts []Task
	for i, p := range []int{5, 5, 5, 5, 5, 5, 1} {
		ts = append(ts, queued(fmt.Sprintf("t%d", i), crdt.TaskValue{Queue: "q", Priority: p, SubmitMS: int64(i)}))
	}
	ids := func(ts []Task) string {
		var s []string
		for _, t := range ts {
			s = append(s, crdt.LastSegment(t.Delta.Key))
		}
		return fmt.Sprint(s)
	}
	for start, want := range map[int]string{
		0: "[t0 t1 t2 t3 t4 t5 t6]",
		1: "[t1 t2 t3 t0 t4 t5 t6]",
		6: "[t2 t3 t0 t1 t4 t5 t6]",
	} {
		if got := ids(Pick(slices.Clone(ts), start)); got != want {
			t.Errorf("start %d: %s, want %s", start, got, want)
		}
	}
	// Never past the highest priority: a lower one is not taken first.
	two := []Task{ts[0], ts[6]}
	if got := ids(Pick(two, 1)); got != "[t0 t6]" {
		t.Errorf("a lower priority picked first: %s", got)
	}
}
