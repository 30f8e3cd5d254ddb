// Package tasks holds the rules of task ownership and of the work queue:
// who may assign a task, submit one to a queue, take it, move it through
// its states, end it and cancel it; which of a queue's tasks a worker may
// take and in what order; when an attempt's worker is gone and the task
// is queued again or, its attempts used up, a dead letter. Each rule is a pure function from the
// task's current winning write to the write to make (or a refusal), so the
// agent only stamps and stores what it returns. The merge of concurrent
// writes (a terminal state is never undone, a cancel request outranks
// queued and running) is crdt's.
package tasks

import (
	"errors"
	"fmt"

	"github.com/rumor-dev/rumor/crdt"
)

// ErrDenied is wrapped by a refusal that depends on who owns the task or
// on its state (the CLI's exit 3).
var ErrDenied = errors.New("tasks: denied")

// ErrBadState is wrapped by a request for a state the caller may not set
// (the CLI's exit 2).
var ErrBadState = errors.New("tasks: bad state")

// Task is the current winning write of a task, decoded.
type Task struct {
	Delta crdt.Delta
	Value crdt.TaskValue
}

// Decode decodes a task's winning write.
func Decode(d crdt.Delta) Task {
	var v crdt.TaskValue
	_ = crdt.Decode(d.Value, &v) // the write policy admitted only decodable values
	return Task{Delta: d, Value: v}
}

func write(id string, state crdt.TaskState, v crdt.TaskValue) crdt.Delta {
	return crdt.Delta{Key: crdt.TaskKey(id), Op: crdt.OpPut, Task: state, Value: crdt.Encode(v)}
}

// Assign returns the write that queues task id on owner. A task that is
// running or past it (cur, if it exists) cannot be reassigned.
func Assign(cur *Task, id, owner string) (crdt.Delta, error) {
	if cur != nil && cur.Delta.Task != crdt.TaskQueued {
		return crdt.Delta{}, fmt.Errorf("%w: task %s is %s on node %s; it can be reassigned only while queued", ErrDenied, id, cur.Delta.Task, cur.Value.Owner)
	}
	return write(id, crdt.TaskQueued, crdt.TaskValue{Owner: owner}), nil
}

// Update returns the write by which the owner, self, reports state
// (running, done, failed or cancelled) with result.
func Update(cur Task, id, self, state, result string) (crdt.Delta, error) {
	s, ok := crdt.ParseTaskState(state)
	if !ok || s == crdt.TaskQueued || s == crdt.TaskCancelRequested {
		return crdt.Delta{}, fmt.Errorf("%w: state must be running, done, failed or cancelled, got %q", ErrBadState, state)
	}
	if cur.Value.Owner != self {
		return crdt.Delta{}, fmt.Errorf("%w: task %s is owned by node %s; only its owner changes its state", ErrDenied, id, cur.Value.Owner)
	}
	if cur.Delta.Task.Terminal() {
		return crdt.Delta{}, fmt.Errorf("%w: task %s is already %s", ErrDenied, id, cur.Delta.Task)
	}
	v := cur.Value
	v.Result = result
	return write(id, s, v), nil
}

// Cancel returns the write that cancels task id from node self, and false
// if there is nothing to write (it ended, or a cancel was requested
// already). worker says whether a worker may be running the task: then
// the write is a request (cancel-requested), which only the worker's
// acknowledgement (its owner's "cancelled") turns into cancelled, so a
// caller never believes a job stopped that may still run. A task no
// worker runs (still queued, its worker's lease gone, or its owner node
// dead) is cancelled at once, with self as its owner of record.
func Cancel(cur Task, id, self string, worker bool) (crdt.Delta, bool) {
	if cur.Delta.Task.Terminal() {
		return crdt.Delta{}, false
	}
	v := cur.Value
	if !worker {
		why := "before a worker ran it"
		if cur.Delta.Task != crdt.TaskQueued || v.Attempt > 0 {
			why = fmt.Sprintf("after its worker (node %s) went away", dashed(v.Owner))
		}
		v.Owner, v.Result = self, "cancelled by node "+self+" "+why
		return write(id, crdt.TaskCancelled, v), true
	}
	if cur.Delta.Task == crdt.TaskCancelRequested {
		return crdt.Delta{}, false
	}
	return write(id, crdt.TaskCancelRequested, v), true
}
