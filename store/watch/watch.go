// Package watch fans the store's changes out to watchers, one per key
// prefix, without ever blocking the writer.
//
// Every change gets a revision, one more than the last, and a Hub keeps the
// most recent ones in a bounded history ring. A Follower reads that ring
// from its own position: it can start after any cursor the ring still
// covers (a client resuming a watch), and one that falls further behind
// than the ring reaches learns it (ErrBehind) and starts over from a
// snapshot, so a slow reader costs the writer nothing and its memory stays
// bounded by the ring. A cursor names the hub's generation, a random id
// chosen when the hub starts (and again when the store is reset), so a
// cursor from another agent or from before a restart is never mistaken for
// one of this history.
//
// A Watcher is the older, push form for the agent's own loops: a bounded
// channel, dropped with ErrSlow when it fills.
package watch

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rumor-dev/rumor/crdt"
)

// ErrSlow is the error of a watcher that fell behind and was dropped.
var ErrSlow = errors.New("store: watcher too slow, dropped")

// ErrClosed is the error of a watcher whose store or watch was closed.
var ErrClosed = errors.New("store: watch closed")

// Event tells a watcher that a delta changed an entry, or (Note set) is
// an event the agent made about a key: an expiry, an owner's death.
type Event struct {
	// Rev is the event's revision in its hub, set by Notify and Publish.
	Rev uint64
	// Key is the key the event is about.
	Key string
	// Delta is the write that changed the entry (zero for a note).
	Delta crdt.Delta
	// Entry is the entry after the change. A store change may leave it
	// zero when the entry is Delta alone (see Current); a Watcher's
	// events always have it.
	Entry crdt.Entry
	// Refresh marks a change that only rewrote what its writer had
	// written, with at most a new expiry (see IsRefresh).
	Refresh bool
	// Note names an event the agent published (Publish); "" for a change
	// of the store.
	Note string
	// Data is a note's payload, opaque to the hub.
	Data any
}

// Current returns the entry after the change.
func (e Event) Current() crdt.Entry {
	if e.Entry.Deltas == nil && e.Note == "" {
		return crdt.Entry{Key: e.Delta.Key, Deltas: []crdt.Delta{e.Delta}}
	}
	return e.Entry
}

// IsRefresh reports whether d, replacing prev as an entry's winner, only
// rewrote what its writer had written, with at most a new expiry: the same
// writer, op (put), value and task state, while prev was still live at d's
// stamp (a TTL refresh, `svc set` again). prev is zero if there was none.
func IsRefresh(prev, d crdt.Delta) bool {
	return d.Op == crdt.OpPut && prev.Op == crdt.OpPut && prev.Stamp.Node == d.Stamp.Node &&
		string(prev.Value) == string(d.Value) && prev.Task == d.Task && prev.Epoch == d.Epoch &&
		prev.Live(d.Stamp.HLC.WallMS())
}

// Hub holds the watchers of one store and its recent history. The zero
// value has none and keeps DefaultHistory events. Its methods are safe for
// concurrent use.
type Hub struct {
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
	n        atomic.Int64 // len(watchers)+len(followers), read without the lock
	history
}

// Watcher receives the events for one key prefix.
type Watcher struct {
	prefix string
	ch     chan Event
	h      *Hub
	err    error // guarded by h.mu
}

// Watch starts a watcher for keys with the given prefix. Events are
// buffered up to buffer (at least 1); a watcher that falls further behind
// is dropped: its channel closes and Err returns ErrSlow.
func (h *Hub) Watch(prefix string, buffer int) *Watcher {
	w := &Watcher{prefix: prefix, ch: make(chan Event, max(buffer, 1)), h: h}
	h.mu.Lock()
	if h.watchers == nil {
		h.watchers = make(map[*Watcher]struct{})
	}
	h.watchers[w] = struct{}{}
	h.countLocked()
	h.mu.Unlock()
	return w
}

// Len returns the number of active watchers and followers, without
// waiting for a lock.
func (h *Hub) Len() int { return int(h.n.Load()) }

func (h *Hub) countLocked() { h.n.Store(int64(len(h.watchers) + len(h.followers))) }

// Notify records a change of the store (ev.Note empty) in the history,
// wakes the followers whose prefix its key has and sends it to such
// watchers. It never blocks: a watcher whose buffer is full is dropped
// with ErrSlow. The store calls it under its own lock, so revisions follow
// the order of changes.
func (h *Hub) Notify(ev Event) {
	if ev.Key == "" {
		ev.Key = ev.Delta.Key
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ev = h.recordLocked(ev)
	if len(h.watchers) == 0 {
		return
	}
	ev.Entry = ev.Current()
	for w := range h.watchers {
		if !strings.HasPrefix(ev.Key, w.prefix) {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			h.dropLocked(w, ErrSlow)
		}
	}
}

// CloseAll ends every watcher and follower with ErrClosed.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.dropLocked(w, ErrClosed)
	}
	for f := range h.followers {
		h.unfollowLocked(f, ErrClosed)
	}
}

// C returns the event channel; it is closed when the watcher ends.
func (w *Watcher) C() <-chan Event { return w.ch }

// Err returns why the watcher ended, or nil while it runs.
func (w *Watcher) Err() error {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.err
}

// Close ends the watcher. It is idempotent.
func (w *Watcher) Close() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.h.dropLocked(w, ErrClosed)
}

// dropLocked removes w with err. Called with h.mu held.
func (h *Hub) dropLocked(w *Watcher, err error) {
	if _, ok := h.watchers[w]; !ok {
		return
	}
	delete(h.watchers, w)
	h.countLocked()
	w.err = err
	close(w.ch)
}
