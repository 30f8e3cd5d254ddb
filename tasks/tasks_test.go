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

func TestCancelAndAcknowledge(t *testing.T) {
	// From another node: a request, which the owner's node acknowledges.
	d, ok := Cancel(task(crdt.TaskRunning, me, me), "t", other)
	if s, owner := state(d); !ok || s != crdt.TaskCancelRequested || owner != me {
		t.Fatalf("cancel from elsewhere: %+v %v", d, ok)
	}
	d.Stamp = crdt.Stamp{HLC: 9, Node: other}
	if _, ok := Acknowledge(d, other); ok {
		t.Error("a node acknowledged a cancel of a task it does not own")
	}
	ack, ok := Acknowledge(d, me)
	if s, _ := state(ack); !ok || s != crdt.TaskCancelled || Decode(ack).Value.Result != "cancelled on request of "+other {
		t.Fatalf("acknowledge: %+v %v", ack, ok)
	}
	if _, ok := Acknowledge(crdt.Delta{Key: "task/t", Task: crdt.TaskRunning, Value: crdt.Encode(crdt.TaskValue{Owner: me})}, me); ok {
		t.Error("acknowledged a task that no one asked to cancel")
	}
	// On the owner's node: cancelled at once.
	if d, ok := Cancel(task(crdt.TaskQueued, me, me), "t", me); !ok || d.Task != crdt.TaskCancelled {
		t.Fatalf("cancel on the owner's node: %+v %v", d, ok)
	}
	// Nothing to do for an ended task or a pending request.
	for _, s := range []crdt.TaskState{crdt.TaskDone, crdt.TaskFailed, crdt.TaskCancelled, crdt.TaskCancelRequested} {
		if _, ok := Cancel(task(s, me, me), "t", other); ok {
			t.Errorf("cancel of a %s task wrote something", s)
		}
	}
}
