// Package watch fans the store's changes out to watchers, one per key
// prefix, without ever blocking the writer: each watcher has a bounded
// buffer, and one that falls behind is dropped (its channel closes and Err
// says why) rather than holding up the apply path or growing without
// bound.
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

// Event tells a watcher that a delta changed an entry.
type Event struct {
	// Delta is the write that changed the entry.
	Delta crdt.Delta
	// Entry is the entry after the change.
	Entry crdt.Entry
}

// Hub holds the watchers of one store. The zero value has none. Its
// methods are safe for concurrent use.
type Hub struct {
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
	n        atomic.Int64 // len(watchers), read without the lock
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
	h.n.Store(int64(len(h.watchers)))
	h.mu.Unlock()
	return w
}

// Len returns the number of active watchers, without waiting for a lock
// (a writer checks it before building an event).
func (h *Hub) Len() int { return int(h.n.Load()) }

// Notify sends ev to the watchers whose prefix its key has. It never
// blocks: a watcher whose buffer is full is dropped with ErrSlow.
func (h *Hub) Notify(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if !strings.HasPrefix(ev.Delta.Key, w.prefix) {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			h.dropLocked(w, ErrSlow)
		}
	}
}

// CloseAll ends every watcher with ErrClosed.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.dropLocked(w, ErrClosed)
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
	h.n.Store(int64(len(h.watchers)))
	w.err = err
	close(w.ch)
}
