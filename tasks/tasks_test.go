package tasks

import (
	"errors"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

const me, other = "me", "other"

func task(state crdt.TaskState, owner, writer string) Task {
	d := crdt.Delta{Key: "task/t", Stamp: crdt.Stamp{HLC: 5, Node: writer}, Op: crdt.OpPut, Task: state, Value: crdt.Encode(crdt.TaskValue{Owner: owner})}
	return Decode(d)
}

func state(d crdt.Delta) (crdt.TaskState, string) {
	t := Decode(d)
	return d.Task, t.Value.Owner
}

func TestAssign(t *testing.T) {
	d, err := Assign(nil, "t", other)
	if s, owner := state(d); err != nil || s != crdt.TaskQueued || owner != other || d.Key != "task/t" {
		t.Fatalf("new task: %+v %v", d, err)
	}
	q := task(crdt.TaskQueued, other, me)
	if _, err := Assign(&q, "t", me); err != nil {
		t.Fatalf("reassign a queued task: %v", err)
	}
	for _, s := range []crdt.TaskState{crdt.TaskRunning, crdt.TaskCancelRequested, crdt.TaskDone} {
		cur := task(s, other, other)
		if _, err := Assign(&cur, "t", me); !errors.Is(err, ErrDenied) {
			t.Errorf("reassign a %s task: %v, want denied", s, err)
		}
	}
}

func TestUpdate(t *testing.T) {
	running := task(crdt.TaskRunning, me, me)
	d, err := Update(running, "t", me, "done", "report.pdf")
	if s, _ := state(d); err != nil || s != crdt.TaskDone || Decode(d).Value.Result != "report.pdf" {
		t.Fatalf("owner sets done: %+v %v", d, err)
	}
	for _, tc := range []struct {
		name       string
		cur        Task
		by, state  string
		wantDenied bool
	}{
		{"not the owner", running, other, "done", true},
		{"already done", task(crdt.TaskDone, me, me), me, "failed", true},
		{"queued is not a state to set", running, me, "queued", false},
		{"cancel-requested is not a state to set", running, me, "cancel-requested", false},
		{"unknown state", running, me, "paused", false},
	} {
		_, err := Update(tc.cur, "t", tc.by, tc.state, "")
		if want := map[bool]error{true: ErrDenied, false: ErrBadState}[tc.wantDenied]; !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", tc.name, err, want)
		}
	}
}

func TestCancel(t *testing.T) {
	// A task a worker may be running: a request, owner unchanged.
	d, ok := Cancel(task(crdt.TaskRunning, me, me), "t", other, true)
	if s, owner := state(d); !ok || s != crdt.TaskCancelRequested || owner != me {
		t.Fatalf("cancel of a running task: %+v %v", d, ok)
	}
	// Even on the worker's own node: the worker acknowledges, not the agent.
	if d, ok := Cancel(task(crdt.TaskRunning, me, me), "t", me, true); !ok || d.Task != crdt.TaskCancelRequested {
		t.Fatalf("cancel on the owner's node: %+v %v", d, ok)
	}
	// No worker: cancelled at once, by the canceller, who is its owner of record.
	for _, s := range []crdt.TaskState{crdt.TaskQueued, crdt.TaskRunning, crdt.TaskCancelRequested} {
		d, ok := Cancel(task(s, me, me), "t", other, false)
		if st, owner := state(d); !ok || st != crdt.TaskCancelled || owner != other || Decode(d).Value.Result == "" {
			t.Errorf("cancel of a %s task without a worker: %+v %v", s, d, ok)
		}
	}
	// Nothing to do for an ended task or a pending request.
	for _, s := range []crdt.TaskState{crdt.TaskDone, crdt.TaskFailed, crdt.TaskCancelled, crdt.TaskCancelRequested} {
		if _, ok := Cancel(task(s, me, me), "t", other, true); ok {
			t.Errorf("cancel of a %s task wrote something", s)
		}
	}
	for _, s := range []crdt.TaskState{crdt.TaskDone, crdt.TaskFailed, crdt.TaskCancelled} {
		if _, ok := Cancel(task(s, me, me), "t", other, false); ok {
			t.Errorf("cancel of a %s task without a worker wrote something", s)
		}
	}
}
