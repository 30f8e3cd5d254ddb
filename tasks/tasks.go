// Package tasks holds the rules of task ownership: who may assign a task,
// move it through its states and cancel it, and when the owner's node
// acknowledges a cancel request. Each rule is a pure function from the
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
// already). On its owner's node a cancel is final at once; elsewhere it is
// a request that the owner's node acknowledges (Acknowledge).
func Cancel(cur Task, id, self string) (crdt.Delta, bool) {
	if cur.Delta.Task.Terminal() || cur.Delta.Task == crdt.TaskCancelRequested {
		return crdt.Delta{}, false
	}
	v, state := cur.Value, crdt.TaskCancelRequested
	if v.Owner == self {
		state, v.Result = crdt.TaskCancelled, "cancelled"
	}
	return write(id, state, v), true
}

// Acknowledge returns the write by which the owner's node, self, turns a
// cancel request (the task's current write, cur) into cancelled, and false
// if cur is not a request for one of self's tasks. The request reached the
// owner's watchers with the same event.
func Acknowledge(cur crdt.Delta, self string) (crdt.Delta, bool) {
	t := Decode(cur)
	if cur.Task != crdt.TaskCancelRequested || t.Value.Owner != self {
		return crdt.Delta{}, false
	}
	v := t.Value
	v.Result = "cancelled on request of " + cur.Stamp.Node
	return write(crdt.LastSegment(cur.Key), crdt.TaskCancelled, v), true
}
