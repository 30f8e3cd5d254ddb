package tasks

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/rumor-dev/rumor/crdt"
)

// LeaseKernel is the id of the kernel lease that a queued task's taker
// holds while it works on the task: the lease rule decides which of two
// concurrent takers got it, and the lease's epoch fences the attempt.
func LeaseKernel(id string) string { return LeasePrefix + id }

// LeasePrefix begins the kernel id of every task's lease; kernel ids with
// it are the work queue's, not a client's.
const LeasePrefix = "task:"

// DefaultMaxAttempts bounds the takes of a task submitted without a bound.
const DefaultMaxAttempts = 3

// Submission is a task submitted to a work queue.
type Submission struct {
	Queue       string
	Payload     []byte
	Priority    int
	MaxAttempts int // 0: DefaultMaxAttempts
	NowMS       int64
}

// Submit returns the write that queues a new task id on a work queue. A
// task id names one task for good: an id in use (cur) is refused.
func Submit(cur *Task, id string, s Submission) (crdt.Delta, error) {
	if cur != nil {
		return crdt.Delta{}, fmt.Errorf("%w: task %s exists (%s); pick another id", ErrDenied, id, cur.Delta.Task)
	}
	if s.MaxAttempts < 0 {
		return crdt.Delta{}, fmt.Errorf("%w: max attempts must not be negative", ErrBadState)
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	return write(id, crdt.TaskQueued, crdt.TaskValue{
		Queue: s.Queue, Payload: s.Payload, Priority: s.Priority, SubmitMS: s.NowMS, MaxAttempts: s.MaxAttempts,
	}), nil
}

// Held reports whether task t's current attempt still has a worker: its
// lease l (the kernel LeaseKernel(id)) is held, by the task's owner at
// the attempt's epoch, and has not run out by nowMS plus the skew margin.
// A lease not seen yet (the take's records still on their way) counts as
// held only if the task says nothing about it either.
func Held(t Task, l crdt.Lease, nowMS, maxSkewMS int64) bool {
	if l.Holder == "" || l.Released || nowMS >= l.Expiry+maxSkewMS {
		return false
	}
	if t.Delta.Task == crdt.TaskQueued {
		return true // taken; the taker's "running" is on its way
	}
	return l.Holder == t.Value.Owner && l.Epoch == t.Value.Epoch
}

// Available reports whether a worker may take t now: a queue's task that
// is queued, or running without a worker (its lease ran out or was
// released: the worker or its node died, or its visibility timeout
// passed), and whose lease nobody holds.
func Available(t Task, l crdt.Lease, nowMS, maxSkewMS int64) bool {
	if t.Value.Queue == "" || (t.Delta.Task != crdt.TaskQueued && t.Delta.Task != crdt.TaskRunning) {
		return false
	}
	return !leaseLive(l, nowMS, maxSkewMS)
}

func leaseLive(l crdt.Lease, nowMS, maxSkewMS int64) bool {
	return l.Holder != "" && !l.Released && nowMS < l.Expiry+maxSkewMS
}

// State is the state to show for t: a running queue task whose worker is
// gone (not Held) is queued again (it waits for its next attempt).
func State(t Task, l crdt.Lease, nowMS, maxSkewMS int64) crdt.TaskState {
	if t.Value.Queue != "" && t.Delta.Task == crdt.TaskRunning && !Held(t, l, nowMS, maxSkewMS) {
		return crdt.TaskQueued
	}
	return t.Delta.Task
}

// Order sorts a queue's tasks into the order they are taken: higher
// priority first, then earlier submission, then id.
func Order(ts []Task) {
	slices.SortFunc(ts, func(a, b Task) int {
		if c := cmp.Compare(b.Value.Priority, a.Value.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Value.SubmitMS, b.Value.SubmitMS); c != 0 {
			return c
		}
		return cmp.Compare(a.Delta.Key, b.Delta.Key)
	})
}

// Exhausted reports whether t has used all its attempts: taking it again
// would exceed MaxAttempts. Attempts are counted by the takes' "running"
// writes: a taker whose node died before its "running" left it is not
// counted (one more attempt than max_attempts, never one fewer), and a
// claim that won the lease but was given up before the task started
// (its taker went away, or the task had ended meanwhile) is not one.
func Exhausted(t Task) bool {
	return t.Value.MaxAttempts > 0 && t.Value.Attempt >= t.Value.MaxAttempts
}

// DeadLetter returns the write by which node self fails t, an available
// task with no attempt left (Exhausted), with the reason.
func DeadLetter(t Task, self string) crdt.Delta {
	v := t.Value
	v.Result = fmt.Sprintf("dead letter: %d of %d attempts used; the last, by node %s, ended without done or fail", v.Attempt, v.MaxAttempts, dashed(v.Owner))
	v.Owner = self
	return write(crdt.LastSegment(t.Delta.Key), crdt.TaskFailed, v)
}

// Take returns the write by which node self starts the next attempt of
// t, whose lease it has won at epoch.
func Take(t Task, self string, epoch uint64) crdt.Delta {
	v := t.Value
	v.Owner, v.Epoch, v.Result = self, epoch, ""
	v.Attempt++
	return write(crdt.LastSegment(t.Delta.Key), crdt.TaskRunning, v)
}

// Spread is how many of a priority's oldest available tasks a take picks
// among at random before it tries the rest in order: concurrent workers
// then rarely race for one task (each race costs the losers a settle
// window), at the price of a strict order among those few.
const Spread = 4

// Pick reorders ts, in take order (Order), into the order one take tries
// them: the first min(Spread, n) tasks of the highest priority, starting
// at start (mod their count, e.g. a random number), then the rest in order.
func Pick(ts []Task, start int) []Task {
	n := 0
	for n < len(ts) && n < Spread && ts[n].Value.Priority == ts[0].Value.Priority {
		n++
	}
	if n <= 1 {
		return ts
	}
	out := make([]Task, 0, len(ts))
	for i := range n {
		out = append(out, ts[(start+i)%n])
	}
	return append(out, ts[n:]...)
}

// Finish returns the write by which the taker, node self holding the
// attempt's lease (held), ends t as done or failed with result.
func Finish(t Task, self string, held bool, state crdt.TaskState, result string) (crdt.Delta, error) {
	id := crdt.LastSegment(t.Delta.Key)
	switch {
	case state != crdt.TaskDone && state != crdt.TaskFailed && state != crdt.TaskCancelled:
		return crdt.Delta{}, fmt.Errorf("%w: a worker ends a task as done, failed or cancelled, not %s", ErrBadState, state)
	case t.Delta.Task.Terminal():
		return crdt.Delta{}, fmt.Errorf("%w: task %s is already %s", ErrDenied, id, t.Delta.Task)
	case t.Value.Owner != self || !held:
		return crdt.Delta{}, fmt.Errorf("%w: task %s is not this node's to finish: its attempt %d is node %s's, and this node holds no lease on it (the visibility timeout passed, or the task was taken again)",
			ErrDenied, id, t.Value.Attempt, dashed(t.Value.Owner))
	}
	v := t.Value
	v.Result = result
	return write(id, state, v), nil
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
