package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/tasks"
)

// DefaultVisibility is how long a one-shot take holds its task when the
// request names no visibility timeout.
const DefaultVisibility = 5 * time.Minute

// taskLease resolves the lease of task id's current attempt.
func (a *Agent) taskLease(id string) crdt.Lease {
	key := crdt.KernelKey(tasks.LeaseKernel(id))
	e, _ := a.store.Get(key)
	if e.Key == "" {
		e.Key = key
	}
	return crdt.Resolve(e)
}

// held reports whether task t's current attempt has a worker.
func (a *Agent) held(t tasks.Task) bool {
	return tasks.Held(t, a.taskLease(crdt.LastSegment(t.Delta.Key)), a.nowMS(), a.cfg.MaxSkew.Milliseconds())
}

// TaskSubmit implements rpc.API: queue a new task on a work queue.
func (a *Agent) TaskSubmit(_ context.Context, queue string, req rpc.TaskSubmit) (rpc.Task, error) {
	if err := errors.Join(badName("queue", queue), badName("task id", req.ID)); err != nil {
		return rpc.Task{}, err
	}
	var cur *tasks.Task
	if t, err := a.task(req.ID); err == nil {
		cur = &t
	}
	d, err := tasks.Submit(cur, req.ID, tasks.Submission{
		Queue: queue, Payload: req.Payload, Priority: req.Priority, MaxAttempts: req.MaxAttempts, NowMS: a.nowMS(),
	})
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if limit := a.cfg.MaxValueBytes; limit > 0 && len(d.Value) > limit {
		return rpc.Task{}, rpc.BadRequest("task %s: payload of %d bytes is too large: the task's value would be %d bytes encoded (base64 and its fields), over max_value_bytes %d",
			req.ID, len(req.Payload), len(d.Value), limit)
	}
	d, _, err = a.write(d)
	return a.taskView(d), err
}

// candidates returns the tasks of queue a worker may take now, in take
// order.
func (a *Agent) candidates(queue string) []tasks.Task {
	var out []tasks.Task
	now, skew := a.nowMS(), a.cfg.MaxSkew.Milliseconds()
	for _, e := range a.store.List("task/") {
		t := tasks.Decode(e.Winner())
		if t.Value.Queue == queue && tasks.Available(t, a.taskLease(crdt.LastSegment(e.Key)), now, skew) {
			out = append(out, t)
		}
	}
	tasks.Order(out)
	return out
}

// TaskTake implements rpc.API: claim the next task of queue with the lease
// rule and start its next attempt on this node. With req.WaitMillis it
// waits that long for a task to take; a take that finds none returns
// Taken false. A one-shot take's lease runs out after the visibility
// timeout unless touched; then the task is queued again.
func (a *Agent) TaskTake(ctx context.Context, queue string, req rpc.TaskTake) (rpc.TakeResult, error) {
	var res rpc.TakeResult
	err := a.take(ctx, queue, req, func(t tasks.Task, visibility int64) (bool, error) {
		id := crdt.LastSegment(t.Delta.Key)
		r, err := a.kernels.Claim(ctx, tasks.LeaseKernel(id), rpc.KernelClaim{TTLMillis: visibility, Job: queue})
		if err != nil || !r.Granted {
			return false, err
		}
		e := r.Kernel.Epoch
		task, ok, err := a.startAttempt(t, e)
		if ok {
			res = rpc.TakeResult{Taken: true, Task: &task}
		}
		return ok, err
	})
	return res, err
}

// take runs try on the queue's candidates in order until one is taken,
// waiting up to req.WaitMillis for one. try claims t's lease for the
// visibility timeout (ms) and reports whether it took t.
func (a *Agent) take(ctx context.Context, queue string, req rpc.TaskTake, try func(t tasks.Task, visibility int64) (bool, error)) error {
	if err := badName("queue", queue); err != nil {
		return err
	}
	if req.VisibilityMillis < 0 || req.WaitMillis < 0 {
		return rpc.BadRequest("visibility and wait must not be negative")
	}
	if req.VisibilityMillis == 0 {
		req.VisibilityMillis = DefaultVisibility.Milliseconds()
	}
	deadline := a.clock.Now().Add(time.Duration(req.WaitMillis) * time.Millisecond)
	w := a.store.Watch("task/", 64)
	defer func() { w.Close() }()
	for {
		for _, t := range a.candidates(queue) {
			if tasks.Exhausted(t) {
				if _, _, err := a.write(tasks.DeadLetter(t, a.self)); err != nil {
					return err
				}
				continue
			}
			ok, err := try(t, req.VisibilityMillis)
			if err != nil || ok {
				return err
			}
		}
		wait := deadline.Sub(a.clock.Now())
		if wait <= 0 {
			return nil
		}
		// Wait for a task to arrive or a lease to run out (checked every
		// second: a lease's end writes nothing).
		t := time.NewTimer(min(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-a.closed:
			t.Stop()
			return ErrStopped
		case _, ok := <-w.C():
			if !ok {
				w = a.store.Watch("task/", 64)
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// startAttempt writes the start of t's next attempt on this node, whose
// lease it won at epoch, unless t has changed meanwhile (cancelled or
// ended): then it releases the lease and reports false.
func (a *Agent) startAttempt(t tasks.Task, epoch uint64) (rpc.Task, bool, error) {
	id := crdt.LastSegment(t.Delta.Key)
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, false, err
	}
	if cur.Delta.Task != crdt.TaskQueued && cur.Delta.Task != crdt.TaskRunning || cur.Value.Attempt != t.Value.Attempt {
		if _, err := a.kernels.Release(context.Background(), tasks.LeaseKernel(id), rpc.KernelRelease{}); err != nil {
			a.log.Debug("take: release of a changed task's lease", "task", id, "err", err)
		}
		return rpc.Task{}, false, nil
	}
	d, _, err := a.write(tasks.Take(cur, a.self, epoch))
	if err != nil {
		return rpc.Task{}, false, err
	}
	return a.taskView(d), true, nil
}

// TaskTakeSession implements rpc.API: a take held by the client's session
// rather than a visibility timeout: the task's lease lives while the
// session does (its keepalives are TaskTouch with the session's id), and
// is released when the client goes away, which queues the task again.
// The stream's first event is granted (with the task) or denied; then
// renewed, cancel-requested (stop, and end the task as cancelled), and a
// final lost, expired or released.
func (a *Agent) TaskTakeSession(ctx context.Context, queue string, req rpc.TaskTake, fn func(rpc.SessionEvent) error) error {
	var (
		mu   sync.Mutex
		sent bool
	)
	send := func(ev rpc.SessionEvent) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(ev)
	}
	err := a.take(ctx, queue, req, func(t tasks.Task, visibility int64) (bool, error) {
		id := crdt.LastSegment(t.Delta.Key)
		granted := false
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stop()
		err := a.kernels.Session(sctx, tasks.LeaseKernel(id), rpc.KernelClaim{TTLMillis: visibility, Job: queue}, func(ev rpc.SessionEvent) error {
			switch ev.Event {
			case rpc.SessionDenied:
				return nil // another worker took it: try the next
			case rpc.SessionGranted:
				task, ok, err := a.startAttempt(t, ev.Kernel.Epoch)
				if err != nil || !ok {
					stop()
					return err
				}
				granted, sent = true, true
				ev.Task = &task
				wg.Go(func() { a.forwardCancel(sctx, id, ev.Session, send) })
			}
			return send(ev)
		})
		if sctx.Err() != nil && ctx.Err() == nil {
			err = nil // ended by us
		}
		return granted, err
	})
	if err == nil && !sent {
		return send(rpc.SessionEvent{Event: rpc.SessionDenied})
	}
	return err
}

// forwardCancel sends a cancel-requested event to the session sid working
// on task id when a cancel is requested, until ctx ends.
func (a *Agent) forwardCancel(ctx context.Context, id, sid string, send func(rpc.SessionEvent) error) {
	key := crdt.TaskKey(id)
	for ctx.Err() == nil {
		w := a.store.Watch(key, 16)
		if t, err := a.task(id); err == nil && t.Delta.Task == crdt.TaskCancelRequested {
			w.Close()
			task := a.taskView(t.Delta)
			_ = send(rpc.SessionEvent{Event: rpc.SessionCancelRequested, Session: sid, Task: &task})
			return
		}
		select {
		case <-ctx.Done():
		case <-w.C():
		}
		w.Close()
	}
}

// TaskTouch implements rpc.API: extend the lease of a task this node
// took (a one-shot take's visibility timeout, or a session's keepalive).
func (a *Agent) TaskTouch(ctx context.Context, id string, req rpc.TaskTouch) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if cur.Value.Queue == "" || cur.Delta.Task.Terminal() {
		return rpc.Task{}, rpc.Denied("task %s is %s: nothing to touch", id, cur.Delta.Task)
	}
	l := a.taskLease(id)
	if cur.Value.Owner != a.self || l.Epoch != cur.Value.Epoch {
		return rpc.Task{}, rpc.Denied("task %s: its attempt %d is node %s's (epoch %d), not this node's", id, cur.Value.Attempt, cur.Value.Owner, cur.Value.Epoch)
	}
	if _, err := a.kernels.Renew(ctx, tasks.LeaseKernel(id), rpc.KernelRenew{TTLMillis: req.VisibilityMillis, Session: req.Session}); err != nil {
		return rpc.Task{}, fmt.Errorf("task %s: %w", id, err)
	}
	return a.taskView(cur.Delta), nil
}

// finish ends task cur, a queue's, for its worker on this node, and
// releases the attempt's lease.
func (a *Agent) finish(ctx context.Context, cur tasks.Task, req rpc.TaskUpdate) (rpc.Task, error) {
	id := crdt.LastSegment(cur.Delta.Key)
	s, ok := crdt.ParseTaskState(req.State)
	if !ok {
		return rpc.Task{}, rpc.BadRequest("bad task state %q", req.State)
	}
	d, err := tasks.Finish(cur, a.self, a.held(cur), s, req.Result)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if d, _, err = a.write(d); err != nil {
		return rpc.Task{}, err
	}
	if _, err := a.kernels.Release(ctx, tasks.LeaseKernel(id), rpc.KernelRelease{Session: req.Session}); err != nil {
		a.log.Debug("task finish: release", "task", id, "err", err)
	}
	return a.taskView(d), nil
}
