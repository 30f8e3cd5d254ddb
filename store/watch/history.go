package watch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultHistory is how many recent events a Hub keeps when SetHistory was
// not called: a watch can resume after a cursor at most this many events
// old (all prefixes counted).
const DefaultHistory = 4096

// ErrBehind is what Follower.Next returns when the history no longer holds
// the follower's next event: it fell more than the history's size behind,
// or the store was reset. The follower must start over (Store.Snapshot).
var ErrBehind = errors.New("store: watch fell behind the history, resync")

// Cursor is a position in a hub's history: the revision of the last event
// seen, in one generation of the hub.
type Cursor struct {
	// Gen is the hub's generation: random, chosen when the hub starts and
	// again when its store is reset.
	Gen string
	// Rev is the revision of the last event seen (0: none).
	Rev uint64
}

// String returns the cursor as clients see it, "<gen>-<rev>", or "" for
// the zero Cursor.
func (c Cursor) String() string {
	if c.Gen == "" {
		return ""
	}
	return c.Gen + "-" + strconv.FormatUint(c.Rev, 10)
}

// ParseCursor reads a cursor written by Cursor.String. The empty string is
// the zero Cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	gen, rev, ok := strings.Cut(s, "-")
	n, err := strconv.ParseUint(rev, 10, 64)
	if !ok || gen == "" || err != nil {
		return Cursor{}, fmt.Errorf("bad cursor %q: want <generation>-<revision>, as a watch event's cursor field", s)
	}
	return Cursor{Gen: gen, Rev: n}, nil
}

// history is a Hub's ring of recent events and its followers. Guarded by
// Hub.mu.
type history struct {
	gen   string
	rev   uint64  // the last revision given
	first uint64  // the oldest revision the ring holds (rev+1 when empty)
	ring  []Event // circular: revision r at r % len(ring); grows up to size
	size  int     // how many events to keep (SetHistory)

	followers map[*Follower]struct{}
}

// initLocked gives a hub its generation and ring on first use.
func (h *Hub) initLocked() {
	if h.gen != "" {
		return
	}
	h.gen = newGen()
	h.first = h.rev + 1
	if h.size <= 0 {
		h.size = DefaultHistory
	}
	h.ring = make([]Event, min(h.size, 64)) // grows as events come
}

// growLocked doubles the ring, up to size, keeping its events.
func (h *Hub) growLocked() {
	ring := make([]Event, min(2*len(h.ring), h.size))
	for r := h.first; r < h.rev; r++ {
		ring[r%uint64(len(ring))] = h.ring[r%uint64(len(h.ring))]
	}
	h.ring = ring
}

func newGen() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// SetHistory sets how many events the hub keeps (DefaultHistory if n is
// not positive). Changing it forgets the history kept so far (see Forget).
func (h *Hub) SetHistory(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.size = n
	if h.gen != "" {
		h.forgetLocked()
	}
}

// Forget drops the history and starts a new generation: every cursor
// given so far becomes foreign, and every follower's next Next returns
// ErrBehind. The store calls it when it changes without events (Reset).
func (h *Hub) Forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != "" {
		h.forgetLocked()
	}
}

func (h *Hub) forgetLocked() {
	h.gen = ""
	h.initLocked()
	for f := range h.followers {
		f.next = 0 // before any first: behind
		f.poke()
	}
}

// Cursor returns the hub's current position: the last revision given.
func (h *Hub) Cursor() Cursor {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	return Cursor{Gen: h.gen, Rev: h.rev}
}

// Publish records an event the agent made (ev.Note set, ev.Key the key
// it is about) in the history and wakes the followers of its key, as
// Notify does for changes of the store; watchers do not see it. It returns
// the event's cursor.
func (h *Hub) Publish(ev Event) Cursor {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev = h.recordLocked(ev)
	return Cursor{Gen: h.gen, Rev: ev.Rev}
}

// recordLocked gives ev the next revision, keeps it in the ring and wakes
// the followers of its key.
func (h *Hub) recordLocked(ev Event) Event {
	h.initLocked()
	h.rev++
	ev.Rev = h.rev
	if h.rev-h.first >= uint64(len(h.ring)) { // full: grow, or let the oldest go
		if len(h.ring) < h.size {
			h.growLocked()
		} else {
			h.first = h.rev - uint64(len(h.ring)) + 1
		}
	}
	h.ring[h.rev%uint64(len(h.ring))] = ev
	for f := range h.followers {
		if strings.HasPrefix(ev.Key, f.prefix) {
			f.poke()
		}
	}
	return ev
}

// Follower reads the events of one key prefix from a hub's history, at
// its own pace.
type Follower struct {
	h      *Hub
	prefix string
	wake   chan struct{}
	next   uint64 // the revision to read next; guarded by h.mu
	err    error  // why it ended; guarded by h.mu
}

// Follow starts a follower of prefix. If since is a cursor of this hub's
// generation whose next event the history still holds, the follower starts
// right after it and Follow reports true. Otherwise (the zero Cursor, a
// foreign or too old one) it starts at the present and Follow reports
// false: the caller needs a snapshot first (Store.Snapshot takes one and
// restarts the follower at it, atomically).
func (h *Hub) Follow(prefix string, since Cursor) (*Follower, bool) {
	f := &Follower{h: h, prefix: prefix, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	if h.followers == nil {
		h.followers = make(map[*Follower]struct{})
	}
	h.followers[f] = struct{}{}
	h.countLocked()
	ok := since.Gen == h.gen && since.Rev <= h.rev && since.Rev+1 >= h.first
	f.next = h.rev + 1
	if ok {
		f.next = since.Rev + 1
		if f.next <= h.rev {
			f.poke()
		}
	}
	return f, ok
}

// Restart moves f to the present, discarding what it has not read, and
// returns its new position. The store calls it while it holds its entries
// still, to take a snapshot (Store.Snapshot).
func (h *Hub) Restart(f *Follower) Cursor {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	if f.err == nil {
		f.next = h.rev + 1
	}
	return Cursor{Gen: h.gen, Rev: h.rev}
}

// Prefix returns the prefix f follows.
func (f *Follower) Prefix() string { return f.prefix }

// Ready returns a channel that receives when f may have events to read (or
// has ended): then call Next until it returns none.
func (f *Follower) Ready() <-chan struct{} { return f.wake }

func (f *Follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Next returns up to limit (at least 1) of f's unread events, in order,
// and the cursor after them (the last event read, or the one past events
// of other prefixes skipped: resuming there misses nothing of f's prefix).
// It returns no events when f is caught up. It returns ErrBehind when the
// history has lost f's next event (f must be restarted), and ErrClosed
// once f or its hub is closed.
func (f *Follower) Next(limit int) ([]Event, Cursor, error) {
	h := f.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.err != nil {
		return nil, Cursor{}, f.err
	}
	if f.next < h.first {
		return nil, Cursor{}, ErrBehind
	}
	var out []Event
	for ; f.next <= h.rev && len(out) < max(limit, 1); f.next++ {
		if ev := h.ring[f.next%uint64(len(h.ring))]; strings.HasPrefix(ev.Key, f.prefix) {
			out = append(out, ev)
		}
	}
	if f.next <= h.rev {
		f.poke() // more to read
	}
	return out, Cursor{Gen: h.gen, Rev: f.next - 1}, nil
}

// Close ends f. It is idempotent.
func (f *Follower) Close() {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.unfollowLocked(f, ErrClosed)
}

func (h *Hub) unfollowLocked(f *Follower, err error) {
	if _, ok := h.followers[f]; !ok {
		return
	}
	delete(h.followers, f)
	h.countLocked()
	f.err = err
	f.poke()
}
