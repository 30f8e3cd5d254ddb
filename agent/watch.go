package agent

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/store/watch"
	"github.com/rumor-dev/rumor/view"
)

// watchBatch is how many events a watch reads from the history at a time.
const watchBatch = 256

// Watch implements rpc.API. It starts with a snapshot of the keys under
// req.Prefix and a synced line (or, from a cursor the history still
// holds, with the events after it; or with resync, then the snapshot),
// then streams every change, expiry, owner down or up and lease event of
// this agent under the prefix, each with its cursor, and a keepalive line
// every req.Keepalive. A reader that falls more than watch_history events
// behind gets resync and a fresh snapshot: the agent never buffers more
// for it than the history holds.
func (a *Agent) Watch(ctx context.Context, req rpc.WatchRequest, fn func(rpc.Event) error) error {
	since, err := watch.ParseCursor(req.Since)
	if err != nil {
		return rpc.BadRequest("since: %v", err)
	}
	hub := a.store.Hub()
	f, resumed := hub.Follow(req.Prefix, since)
	defer f.Close()
	if !resumed {
		if req.Since != "" {
			reason := rpc.ResyncTooOld
			if since.Gen != hub.Cursor().Gen {
				reason = rpc.ResyncForeign
			}
			if err := fn(rpc.Event{Op: rpc.OpResync, Reason: reason, Time: a.clock.Now()}); err != nil {
				return err
			}
		}
		if err := a.sendSnapshot(f, fn); err != nil {
			return err
		}
	}
	var tick <-chan time.Time
	if k := cmpOr(req.Keepalive, rpc.DefaultKeepalive); k > 0 {
		t := time.NewTicker(k)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.closed:
			return ErrStopped
		case <-f.Ready():
			if _, err := a.deliver(f, fn); err != nil {
				return err
			}
		case <-tick:
			at, err := a.deliver(f, fn)
			if err == nil {
				err = fn(rpc.Event{Op: rpc.OpKeepalive, Cursor: at.String(), Time: a.clock.Now()})
			}
			if err != nil {
				return err
			}
		}
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// deliver sends f's unread events, and a resync and snapshot if it fell
// behind, and returns the cursor after them.
func (a *Agent) deliver(f *watch.Follower, fn func(rpc.Event) error) (watch.Cursor, error) {
	for {
		evs, at, err := f.Next(watchBatch)
		switch {
		case errors.Is(err, watch.ErrBehind):
			if err := fn(rpc.Event{Op: rpc.OpResync, Reason: rpc.ResyncBehind, Time: a.clock.Now()}); err != nil {
				return at, err
			}
			if err := a.sendSnapshot(f, fn); err != nil {
				return at, err
			}
			continue
		case err != nil:
			return at, ErrStopped // the store closed
		}
		for _, ev := range evs {
			if err := fn(a.watchEvent(ev, watch.Cursor{Gen: at.Gen, Rev: ev.Rev})); err != nil {
				return at, err
			}
		}
		if len(evs) == 0 {
			return at, nil
		}
	}
}

// sendSnapshot restarts f at a snapshot of its prefix and sends it: one
// snapshot line per live entry (no deletes, no expired entries) and a
// synced line with the snapshot's cursor.
func (a *Agent) sendSnapshot(f *watch.Follower, fn func(rpc.Event) error) error {
	entries, at := a.store.Snapshot(f)
	now := a.nowMS()
	for _, e := range entries {
		w := e.Winner()
		if w.Op == crdt.OpDelete || (w.Op == crdt.OpPut && !w.Live(now)) {
			continue
		}
		err := fn(rpc.Event{
			Key: e.Key, Op: rpc.OpSnapshot, Node: w.Stamp.Node, Stamp: w.Stamp.HLC.String(),
			Time: view.StampTime(w.Stamp), Value: a.eventValue(e, now),
		})
		if err != nil {
			return err
		}
	}
	return fn(rpc.Event{Op: rpc.OpSynced, Cursor: at.String(), Time: a.clock.Now()})
}

// watchEvent is the line of a history event: a note's own, or a write's.
func (a *Agent) watchEvent(ev watch.Event, at watch.Cursor) rpc.Event {
	if e, ok := ev.Data.(rpc.Event); ok {
		e.Cursor = at.String()
		return e
	}
	if lost, ok := ev.Data.(crdt.Delta); ok && ev.Note == store.NoteConflict {
		w, l := view.KV(ev.Delta), view.KV(lost)
		return rpc.Event{
			Key: ev.Key, Op: rpc.OpConflict, Node: w.Writer, Stamp: w.Stamp, Time: w.Updated,
			Value: w, Lost: &l, Cursor: at.String(),
		}
	}
	d := ev.Delta
	op := d.Op.String()
	if ev.Refresh {
		op = rpc.OpRefresh
	}
	return rpc.Event{
		Key: d.Key, Op: op, Node: d.Stamp.Node, Stamp: d.Stamp.HLC.String(),
		Time: view.StampTime(d.Stamp), Value: a.eventValue(ev.Current(), a.nowMS()), Cursor: at.String(),
	}
}

// ownerChanges collects the membership changes to and from dead that
// watchNotes turns into owner-down and owner-up events.
type ownerChanges struct {
	mu   sync.Mutex
	m    map[string]membership.Change // node -> first From, last To
	wake chan struct{}
}

func newOwnerChanges() *ownerChanges {
	return &ownerChanges{m: map[string]membership.Change{}, wake: make(chan struct{}, 1)}
}

// note is the failure detector's OnChange: it never blocks.
func (o *ownerChanges) note(c membership.Change) {
	if c.From != membership.Dead && c.To != membership.Dead {
		return
	}
	o.mu.Lock()
	if prev, ok := o.m[c.ID]; ok {
		c.From = prev.From
	}
	o.m[c.ID] = c
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *ownerChanges) take() map[string]membership.Change {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.m
	o.m = map[string]membership.Change{}
	return m
}

// watchNotes returns the loop that makes the watch events that are not
// writes, until its ctx ends: an svc or bl entry's expiry when its TTL
// passes (by the agent's clock), owner-down and owner-up for the live svc
// entries of a node the failure detector declares dead or sees again, and
// this agent's lease events. Each goes into the store's watch history,
// with a cursor, like a write. It subscribes to the lease events and
// follows the history before it returns, so that the loop misses nothing
// that happens after Start, however late its goroutine runs.
func (a *Agent) watchNotes() func(ctx context.Context) {
	leases, unsubscribe := a.kernels.Subscribe("")
	f, _ := a.store.Hub().Follow("", watch.Cursor{})
	return func(ctx context.Context) {
		defer unsubscribe()
		defer f.Close()
		a.watchNotesLoop(ctx, f, leases)
	}
}

// watchNotesLoop is watchNotes' loop: f follows every key, leases are
// this agent's lease events.
func (a *Agent) watchNotesLoop(ctx context.Context, f *watch.Follower, leases <-chan rpc.Event) {
	hub := a.store.Hub()
	var x expiries
	done := a.nowMS() // entries that expired by then are not announced
	x.load(a.store, f, done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if len(x.q) > 0 {
			timer.Reset(time.Duration(x.q[0].ms-a.nowMS()) * time.Millisecond)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case ev := <-leases:
			hub.Publish(watch.Event{Key: ev.Key, Note: rpc.OpLease, Data: ev})
		case <-a.owners.wake:
			a.ownerEvents(a.owners.take())
		case <-f.Ready():
			for {
				evs, _, err := f.Next(watchBatch)
				if errors.Is(err, watch.ErrBehind) {
					x.load(a.store, f, done)
					continue
				}
				if err != nil || len(evs) == 0 {
					break
				}
				for _, ev := range evs {
					if ev.Note != "" {
						continue
					}
					w := ev.Delta // a register's winner, without building its entry
					if ev.Entry.Deltas != nil {
						w = ev.Entry.Winner()
					}
					x.track(ev.Key, w, done)
				}
			}
		case <-timer.C:
			done = a.expire(&x)
		}
	}
}

// expire announces the tracked expiries that are due and returns now.
func (a *Agent) expire(x *expiries) int64 {
	now := a.nowMS()
	for len(x.q) > 0 && x.q[0].ms <= now {
		it := heap.Pop(x).(expiry)
		a.store.PublishIf(it.key, func(e crdt.Entry) (watch.Event, bool) {
			w := e.Winner()
			if len(e.Deltas) == 0 || w.Op != crdt.OpPut || w.Expiry != it.ms || w.Live(now) {
				return watch.Event{}, false // rewritten or deleted meanwhile
			}
			return watch.Event{Key: it.key, Note: rpc.OpExpired, Data: rpc.Event{
				Key: it.key, Op: rpc.OpExpired, Node: w.Stamp.Node, Stamp: w.Stamp.HLC.String(),
				Time: view.Time(w.Expiry), Value: a.eventValue(e, now),
			}}, true
		})
	}
	return now
}

// ownerEvents publishes owner-down or owner-up for each live svc entry of
// the nodes that died or came back.
func (a *Agent) ownerEvents(changes map[string]membership.Change) {
	if len(changes) == 0 {
		return
	}
	now := a.nowMS()
	for _, e := range a.store.List("svc/") {
		w := e.Winner()
		c, ok := changes[w.Stamp.Node]
		if !ok || !w.Live(now) || (c.From == membership.Dead) == (c.To == membership.Dead) {
			continue
		}
		op := rpc.OpOwnerDown
		if c.From == membership.Dead {
			op = rpc.OpOwnerUp
		}
		a.store.Hub().Publish(watch.Event{Key: e.Key, Note: op, Data: rpc.Event{
			Key: e.Key, Op: op, Node: w.Stamp.Node, Stamp: w.Stamp.HLC.String(),
			Time: a.clock.Now(), Value: a.eventValue(e, now),
		}})
	}
}

// expiries are the deadlines of the svc, bl and kv entries with a TTL: a
// min-heap with one item per key.
type expiries struct {
	q  []expiry
	at map[string]int // key -> index in q
}

type expiry struct {
	key string
	ms  int64
}

// load restarts f at a snapshot and tracks its entries that expire after
// done.
func (x *expiries) load(s interface {
	Snapshot(*watch.Follower) ([]crdt.Entry, watch.Cursor)
}, f *watch.Follower, done int64) {
	entries, _ := s.Snapshot(f)
	for _, e := range entries {
		x.track(e.Key, e.Winner(), done)
	}
}

// track follows key's winning write: its expiry if it is an svc, bl or kv put
// with one after done, else none.
func (x *expiries) track(key string, w crdt.Delta, done int64) {
	if x.at == nil {
		x.at = map[string]int{}
	}
	ns := crdt.NamespaceOf(key)
	i, ok := x.at[key]
	switch {
	case (ns == crdt.NSService || ns == crdt.NSBlacklist || ns == crdt.NSKV) && w.Op == crdt.OpPut && w.Expiry > done:
		if ok {
			x.q[i].ms = w.Expiry
			heap.Fix(x, i)
		} else {
			heap.Push(x, expiry{key: key, ms: w.Expiry})
		}
	case ok:
		heap.Remove(x, i)
	}
}

func (x *expiries) Len() int           { return len(x.q) }
func (x *expiries) Less(i, j int) bool { return x.q[i].ms < x.q[j].ms }
func (x *expiries) Swap(i, j int) {
	x.q[i], x.q[j] = x.q[j], x.q[i]
	x.at[x.q[i].key], x.at[x.q[j].key] = i, j
}

// Push implements heap.Interface.
func (x *expiries) Push(v any) {
	it := v.(expiry)
	x.at[it.key] = len(x.q)
	x.q = append(x.q, it)
}

// Pop implements heap.Interface.
func (x *expiries) Pop() any {
	it := x.q[len(x.q)-1]
	x.q = x.q[:len(x.q)-1]
	delete(x.at, it.key)
	return it
}
