// Package kvhist keeps, per kv key, the latest writes a store saw: the
// winners and the writes that lost, newest stamp first, a bounded number
// of each key. It lives in memory: after a restart a key's history starts
// at its winner. It is what `rumor kv history` shows.
package kvhist

import (
	"slices"

	"github.com/rumor-dev/rumor/crdt"
)

// DefaultLimit is how many writes per key a History keeps when SetLimit
// was not called.
const DefaultLimit = 5

// History is the writes kept per kv key. The zero value keeps
// DefaultLimit per key. It is not safe for concurrent use: the store
// guards it with its own lock.
type History struct {
	n int
	m map[string][]crdt.Delta
}

func (h *History) limit() int {
	if h.n <= 0 {
		return DefaultLimit
	}
	return h.n
}

// SetLimit sets how many writes per key h keeps (n <= 0: DefaultLimit).
// Keys holding more keep their newest.
func (h *History) SetLimit(n int) {
	h.n = n
	for k, ds := range h.m {
		if l := h.limit(); len(ds) > l {
			h.m[k] = ds[:l:l]
		}
	}
}

// Note adds d to its key's history (once, in stamp order) without its
// proof: the history is for reading, and a proof would keep its whole
// batch's certificate alive.
func (h *History) Note(d crdt.Delta) {
	if h.m == nil {
		h.m = map[string][]crdt.Delta{}
	}
	d.Proof = crdt.Proof{}
	old := h.m[d.Key]
	i, found := slices.BinarySearchFunc(old, d, func(a, b crdt.Delta) int { return -crdt.CompareWrites(a, b) })
	if found || i >= h.limit() {
		return
	}
	next := make([]crdt.Delta, 0, min(len(old)+1, h.limit()))
	next = append(next, old[:i]...)
	next = append(next, d)
	next = append(next, old[i:]...)
	h.m[d.Key] = next[:min(len(next), h.limit())]
}

// Of returns key's writes, newest first (nil if none are kept).
func (h *History) Of(key string) []crdt.Delta { return slices.Clone(h.m[key]) }

// Forget drops key's history (its tombstone was collected).
func (h *History) Forget(key string) { delete(h.m, key) }
