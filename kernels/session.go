package kernels

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/tasks"
)

// Session is rpc.API's KernelSession: a claim on behalf of one client's
// session, held only while the session lives. The agent does not renew a
// session's lease by itself: each keepalive of the client (KernelRenew
// with the session's id) does. When the client goes away (ctx ends: its
// connection closed) the lease is released at once; when its keepalives
// stop, the lease runs out after its TTL. Two sessions are two claimants,
// even on one host: neither can renew or release the other's lease.
func (s *Service) Session(ctx context.Context, id string, req rpc.KernelClaim, fn func(rpc.SessionEvent) error) error {
	sid := rand.Text()[:16]
	key := crdt.KernelKey(id)
	// Subscribed before the claim, so no event of the lease is missed.
	evs, unsubscribe := s.events.subscribe(key)
	defer unsubscribe()
	if req.Once != "" {
		if err := badName("run-once slot", req.Once); err != nil {
			return err
		}
		if err := badName("run-once task", rpc.OnceTask(id, req.Once)); err != nil {
			return err
		}
	}
	res, err := s.claimWaiting(ctx, id, req, owner{Session: sid}, func(k rpc.Kernel) error {
		return fn(rpc.SessionEvent{Event: rpc.SessionWaiting, Kernel: k})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		return err
	}
	if !res.Granted {
		return fn(rpc.SessionEvent{Event: rpc.SessionDenied, Kernel: res.Kernel})
	}
	epoch := res.Kernel.Epoch
	defer s.endSession(key, epoch, sid)
	ttl, _ := s.leaseTTL(req.TTLMillis) // checked by the claim
	granted := rpc.SessionEvent{Event: rpc.SessionGranted, Session: sid, TTLMillis: ttl, MarginMillis: s.cfg.LeaseMargin.Milliseconds(), Kernel: res.Kernel}
	if req.Once != "" {
		t, err := s.onceBegin(ctx, id, req.Once, epoch, ttl)
		if err != nil {
			return err
		}
		granted.Once = &t
	}
	if err := fn(granted); err != nil {
		return err
	}
	stopping := s.stopping
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return nil
		case <-stopping:
			stopping = nil
			if err := fn(rpc.SessionEvent{Event: rpc.SessionStopping, Session: sid, Kernel: s.kernelView(s.lease(key), s.nowMS())}); err != nil {
				return err
			}
		case ev := <-evs:
			if ev.Key != key {
				continue // another kernel whose id starts with this one
			}
			k, _ := ev.Value.(rpc.Kernel)
			var out string
			switch ev.Lease {
			case rpc.LeaseRenewed:
				if k.Epoch == epoch {
					out = rpc.SessionRenewed
				}
			case rpc.LeaseSuspect:
				out = rpc.SessionSuspect
			case rpc.LeaseLost:
				out = rpc.SessionLost
			case rpc.LeaseExpired, rpc.LeaseReleased:
				if k.Epoch == epoch {
					out = ev.Lease
				}
			}
			if out == "" {
				continue
			}
			if err := fn(rpc.SessionEvent{Event: out, Session: sid, Kernel: k}); err != nil {
				return err
			}
			if out != rpc.SessionRenewed && out != rpc.SessionSuspect {
				return nil // the lease has ended
			}
		}
	}
}

// Drain tells every session that the agent is stopping and waits
// until their clients have released their leases (having stopped what
// they ran under them), or until bound has passed. A graceful stop then
// frees the kernels without letting another host start before the command
// here has stopped.
func (s *Service) Drain(bound time.Duration) {
	s.stopOnce.Do(func() { close(s.stopping) })
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for s.owners.sessions() > 0 {
		select {
		case <-timeout.C:
			return
		case <-poll.C:
		}
	}
}

// endSession releases the lease session sid holds on key at epoch, if it
// still does: its client went away.
func (s *Service) endSession(key string, epoch uint64, sid string) {
	w, ok := s.owners.get(key, epoch)
	if !ok || w.Session != sid {
		return
	}
	l := s.lease(key)
	if l.Holder != s.self || l.Epoch != epoch || l.Released {
		return
	}
	if _, err := s.release(l); err != nil {
		s.log.Debug("session end: release", "kernel", crdt.LastSegment(key), "err", err)
	}
}

// wait claims id for w until the claim is granted or req.WaitMillis has
// passed (then it reports the last denial). Between attempts it sleeps
// until the kernel's records change or its lease can have run out: no
// polling. waiting, if not nil, is called after the first denial.
func (s *Service) wait(ctx context.Context, id string, req rpc.KernelClaim, ttl int64, w owner, waiting func(rpc.Kernel) error) (rpc.ClaimResult, error) {
	key := crdt.KernelKey(id)
	wctx, cancel := context.WithTimeout(ctx, time.Duration(req.WaitMillis)*time.Millisecond)
	defer cancel()
	watch := s.store.Watch(key, 16)
	defer func() { watch.Close() }()
	queue := s.store.Watch("wait/"+id+"/", 16)
	defer func() { queue.Close() }()
	qid := w.Session
	if qid == "" {
		qid = rand.Text()[:16]
	}
	var (
		last      rpc.ClaimResult
		since     int64     // when this claim joined the queue (0: not yet)
		refreshAt time.Time // when its wait entry is due for a refresh
	)
	defer func() {
		if since != 0 {
			s.dequeue(id, qid)
		}
	}()
	for first := true; ; first = false {
		// An attempt runs to its verdict even if the wait ends meanwhile:
		// a claim granted at the last moment is kept, not abandoned.
		res, err := s.claim(ctx, id, req.Job, ttl, w, qid)
		switch {
		case err != nil:
			return res, err
		case res.Granted:
			return res, nil
		}
		last = res
		if since == 0 || !s.clock.Now().Before(refreshAt) {
			if since == 0 {
				since = s.nowMS()
			}
			if err := s.enqueue(id, qid, req.Job, since); err != nil {
				return res, err
			}
			refreshAt = s.clock.Now().Add(s.waitTTL() / 3)
		}
		if first && waiting != nil {
			if err := waiting(s.kernelView(s.lease(key), s.nowMS())); err != nil {
				return res, err
			}
		}
		// Sleep until the kernel's records or its queue change, until the
		// lease may be claimed (its expiry plus the skew margin), or until
		// the wait entry is due for a refresh, whichever is first.
		l := s.lease(key)
		next := time.Duration(l.Expiry+s.cfg.MaxSkew.Milliseconds()-s.nowMS()) * time.Millisecond
		t := time.NewTimer(min(max(next, s.settleWindow()), refreshAt.Sub(s.clock.Now())))
		select {
		case _, ok := <-watch.C():
			if !ok { // fell behind: watch again
				watch = s.store.Watch(key, 16)
			}
		case _, ok := <-queue.C():
			if !ok {
				queue = s.store.Watch("wait/"+id+"/", 16)
			}
		case <-t.C:
		case <-wctx.Done():
		case <-s.closed:
		}
		t.Stop()
		if wctx.Err() != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, nil
		}
		select {
		case <-s.closed:
			return last, ErrStopped
		default:
		}
	}
}

// onceBegin starts the run of slot of kernel id, whose lease this node
// holds at epoch: it fetches the slot's record from every connected peer
// (the last runner wrote it before releasing the kernel, and its release
// may have come first), and returns it if a run completed; else it marks
// the slot running on this node, noting a run that did not complete.
func (s *Service) onceBegin(ctx context.Context, id, slot string, epoch uint64, ttl int64) (rpc.Task, error) {
	key := crdt.TaskKey(rpc.OnceTask(id, slot))
	s.exchangeKey(ctx, key, ttl)
	result := fmt.Sprintf("run by %s at epoch %d", s.self, epoch)
	if e, ok := s.store.Get(key); ok {
		cur := tasks.Decode(e.Winner())
		if cur.Delta.Task.Terminal() {
			return s.taskView(cur.Delta), nil
		}
		if cur.Value.Owner != s.self || cur.Delta.Task == crdt.TaskRunning {
			result += fmt.Sprintf("; retry: the run by %s (%s) did not complete", cur.Value.Owner, cur.Value.Result)
		}
	}
	d, _, err := s.write(crdt.Delta{Key: key, Op: crdt.OpPut, Task: crdt.TaskRunning, Value: crdt.Encode(crdt.TaskValue{Owner: s.self, Result: result})})
	if err != nil {
		return rpc.Task{}, err
	}
	return s.taskView(d), nil
}
