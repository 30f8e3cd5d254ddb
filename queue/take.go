package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/kernels"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/tasks"
)

// DefaultVisibility is how long a one-shot take holds its task when the
// request names no visibility timeout.
const DefaultVisibility = 5 * time.Minute

// lease resolves the lease of task id's current attempt.
func (s *Service) lease(id string) crdt.Lease {
	key := crdt.KernelKey(tasks.LeaseKernel(id))
	e, _ := s.store.Get(key)
	if e.Key == "" {
		e.Key = key
	}
	return crdt.Resolve(e)
}

// held reports whether task t's current attempt has a worker.
func (s *Service) held(t tasks.Task) bool {
	return tasks.Held(t, s.lease(crdt.LastSegment(t.Delta.Key)), s.nowMS(), s.cfg.MaxSkew.Milliseconds())
}

// Submit is rpc.API's TaskSubmit: queue a new task on a work queue.
func (s *Service) Submit(_ context.Context, queue string, req rpc.TaskSubmit) (rpc.Task, error) {
	if err := errors.Join(badName("queue", queue), badName("task id", req.ID)); err != nil {
		return rpc.Task{}, err
	}
	var cur *tasks.Task
	if t, err := s.task(req.ID); err == nil {
		cur = &t
	}
	d, err := tasks.Submit(cur, req.ID, tasks.Submission{
		Queue: queue, Payload: req.Payload, Priority: req.Priority, MaxAttempts: req.MaxAttempts, NowMS: s.nowMS(),
	})
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if limit := s.cfg.MaxValueBytes; limit > 0 && len(d.Value) > limit {
		return rpc.Task{}, rpc.BadRequest("task %s: payload of %d bytes is too large: the task's value would be %d bytes encoded (base64 and its fields), over max_value_bytes %d",
			req.ID, len(req.Payload), len(d.Value), limit)
	}
	d, _, err = s.write(d)
	return s.view(d), err
}

// candidates returns the tasks of queue a worker may take now, in take
// order.
func (s *Service) candidates(queue string) []tasks.Task {
	var out []tasks.Task
	now, skew := s.nowMS(), s.cfg.MaxSkew.Milliseconds()
	for _, e := range s.store.List("task/") {
		t := tasks.Decode(e.Winner())
		if t.Value.Queue == queue && tasks.Available(t, s.lease(crdt.LastSegment(e.Key)), now, skew) {
			out = append(out, t)
		}
	}
	tasks.Order(out)
	return out
}

// Take is rpc.API's TaskTake: claim the next task of queue with the lease
// rule and start its next attempt on this node. With req.WaitMillis it
// waits that long for a task to take; a take that finds none returns
// Taken false. A one-shot take's lease runs out after the visibility
// timeout unless touched; then the task is queued again.
func (s *Service) Take(ctx context.Context, queue string, req rpc.TaskTake) (rpc.TakeResult, error) {
	var res rpc.TakeResult
	err := s.take(ctx, queue, req, func(t tasks.Task, visibility int64) (bool, error) {
		id := crdt.LastSegment(t.Delta.Key)
		r, err := s.kernels.Claim(ctx, tasks.LeaseKernel(id), rpc.KernelClaim{TTLMillis: visibility, Job: queue})
		if err != nil || !r.Granted {
			return false, err
		}
		e := r.Kernel.Epoch
		task, ok, err := s.startAttempt(ctx, t, e, "", visibility)
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
func (s *Service) take(ctx context.Context, queue string, req rpc.TaskTake, try func(t tasks.Task, visibility int64) (bool, error)) error {
	if err := badName("queue", queue); err != nil {
		return err
	}
	if req.VisibilityMillis < 0 || req.WaitMillis < 0 {
		return rpc.BadRequest("visibility and wait must not be negative")
	}
	if req.VisibilityMillis == 0 {
		req.VisibilityMillis = DefaultVisibility.Milliseconds()
	}
	deadline := s.clock.Now().Add(time.Duration(req.WaitMillis) * time.Millisecond)
	w := s.store.Watch("task/", 64)
	defer func() { w.Close() }()
	for {
		for _, t := range tasks.Pick(s.candidates(queue), s.rand()) {
			ok, err := s.tryOne(t, req.VisibilityMillis, try)
			if err != nil || ok {
				return err
			}
		}
		wait := deadline.Sub(s.clock.Now())
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
		case <-s.closed:
			t.Stop()
			return kernels.ErrStopped
		case _, ok := <-w.C():
			if !ok {
				w = s.store.Watch("task/", 64)
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// tryOne fails t as a dead letter if it has used its attempts, else runs
// try on it, unless another take of this node is at it: a one-shot claim
// by this node of a lease this node holds would renew it, so two local
// takers of one task would both think they had it.
func (s *Service) tryOne(t tasks.Task, visibility int64, try func(t tasks.Task, visibility int64) (bool, error)) (bool, error) {
	id := crdt.LastSegment(t.Delta.Key)
	s.mu.Lock()
	if s.claiming[id] {
		s.mu.Unlock()
		return false, nil
	}
	s.claiming[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.claiming, id)
		s.mu.Unlock()
	}()
	// Judged again now that no local take is at it: one may have just
	// taken it.
	cur, err := s.task(id)
	if err != nil {
		return false, err
	}
	l := s.lease(id)
	if !tasks.Available(cur, l, s.nowMS(), s.cfg.MaxSkew.Milliseconds()) {
		return false, nil
	}
	if tasks.Exhausted(cur) {
		_, _, err := s.write(tasks.DeadLetter(cur, s.self))
		return false, err
	}
	return try(cur, visibility)
}

// startAttempt writes the start of t's next attempt on this node, whose
// lease it won at epoch for session ("" for a one-shot take), unless t
// has changed meanwhile (it ended, was cancelled, or another attempt
// began): then it gives the lease back and reports false. It first
// fetches the task from every connected peer: a worker that ended the
// task wrote "done" before it released the lease, but the two travel on
// different topics, and the release can arrive first.
func (s *Service) startAttempt(ctx context.Context, t tasks.Task, epoch uint64, session string, visibility int64) (rpc.Task, bool, error) {
	id := crdt.LastSegment(t.Delta.Key)
	s.kernels.Exchange(ctx, t.Delta.Key, visibility)
	cur, err := s.task(id)
	if err != nil {
		return rpc.Task{}, false, err
	}
	if cur.Delta.Task != crdt.TaskQueued && cur.Delta.Task != crdt.TaskRunning || cur.Value.Attempt != t.Value.Attempt || cur.Delta.Stamp != t.Delta.Stamp {
		if _, err := s.kernels.Release(context.Background(), tasks.LeaseKernel(id), rpc.KernelRelease{Session: session}); err != nil {
			s.log.Debug("take: release of a changed task's lease", "task", id, "err", err)
		}
		return rpc.Task{}, false, nil
	}
	// The visibility timeout runs from the start of the attempt, not from
	// the claim: the settle window and the exchanges (seconds, with far
	// peers) must not eat the worker's time.
	if _, err := s.kernels.Renew(ctx, tasks.LeaseKernel(id), rpc.KernelRenew{TTLMillis: visibility, Session: session}); err != nil {
		s.log.Debug("take: renewal at the start of the attempt", "task", id, "err", err)
		return rpc.Task{}, false, nil // lost meanwhile: another worker's
	}
	d, _, err := s.write(tasks.Take(cur, s.self, epoch))
	if err != nil {
		return rpc.Task{}, false, err
	}
	return s.view(d), true, nil
}

// TakeSession is rpc.API's TaskTakeSession: a take held by the client's session
// rather than a visibility timeout: the task's lease lives while the
// session does (its keepalives are TaskTouch with the session's id), and
// is released when the client goes away, which queues the task again.
// The stream's first event is granted (with the task) or denied; then
// renewed, cancel-requested (stop, and end the task as cancelled), and a
// final lost, expired or released.
func (s *Service) TakeSession(ctx context.Context, queue string, req rpc.TaskTake, fn func(rpc.SessionEvent) error) error {
	var (
		mu   sync.Mutex
		sent bool
	)
	send := func(ev rpc.SessionEvent) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(ev)
	}
	err := s.take(ctx, queue, req, func(t tasks.Task, visibility int64) (bool, error) {
		id := crdt.LastSegment(t.Delta.Key)
		granted := false
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stop()
		err := s.kernels.Session(sctx, tasks.LeaseKernel(id), rpc.KernelClaim{TTLMillis: visibility, Job: queue}, func(ev rpc.SessionEvent) error {
			switch ev.Event {
			case rpc.SessionDenied:
				return nil // another worker took it: try the next
			case rpc.SessionGranted:
				task, ok, err := s.startAttempt(sctx, t, ev.Kernel.Epoch, ev.Session, visibility)
				if err != nil || !ok {
					stop()
					return err
				}
				granted, sent = true, true
				ev.Task = &task
				wg.Go(func() { s.forwardCancel(sctx, id, ev.Session, send) })
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
func (s *Service) forwardCancel(ctx context.Context, id, sid string, send func(rpc.SessionEvent) error) {
	key := crdt.TaskKey(id)
	for ctx.Err() == nil {
		w := s.store.Watch(key, 16)
		if t, err := s.task(id); err == nil && t.Delta.Task == crdt.TaskCancelRequested {
			w.Close()
			task := s.view(t.Delta)
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

// Touch is rpc.API's TaskTouch: extend the lease of a task this node
// took (a one-shot take's visibility timeout, or a session's keepalive).
func (s *Service) Touch(ctx context.Context, id string, req rpc.TaskTouch) (rpc.Task, error) {
	cur, err := s.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if cur.Value.Queue == "" || cur.Delta.Task.Terminal() {
		return rpc.Task{}, rpc.Denied("task %s is %s: nothing to touch", id, cur.Delta.Task)
	}
	l := s.lease(id)
	if cur.Value.Owner != s.self || l.Epoch != cur.Value.Epoch {
		return rpc.Task{}, rpc.Denied("task %s: its attempt %d is node %s's (epoch %d), not this node's", id, cur.Value.Attempt, cur.Value.Owner, cur.Value.Epoch)
	}
	if _, err := s.kernels.Renew(ctx, tasks.LeaseKernel(id), rpc.KernelRenew{TTLMillis: req.VisibilityMillis, Session: req.Session}); err != nil {
		return rpc.Task{}, fmt.Errorf("task %s: %w", id, err)
	}
	return s.view(cur.Delta), nil
}

// finish ends task cur, a queue's, for its worker on this node, and
// releases the attempt's lease.
func (s *Service) finish(ctx context.Context, cur tasks.Task, req rpc.TaskUpdate) (rpc.Task, error) {
	id := crdt.LastSegment(cur.Delta.Key)
	state, ok := crdt.ParseTaskState(req.State)
	if !ok {
		return rpc.Task{}, rpc.BadRequest("bad task state %q", req.State)
	}
	d, err := tasks.Finish(cur, s.self, s.held(cur), state, req.Result)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if d, _, err = s.write(d); err != nil {
		return rpc.Task{}, err
	}
	if _, err := s.kernels.Release(ctx, tasks.LeaseKernel(id), rpc.KernelRelease{Session: req.Session}); err != nil {
		s.log.Debug("task finish: release", "task", id, "err", err)
	}
	return s.view(d), nil
}
