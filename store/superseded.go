package store

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/rumor-dev/rumor/crdt"
)

// Superseded memory bounds: the most recently touched keys, and per key the
// latest writes that lost.
const (
	supersededKeys   = 4096
	supersededPerKey = 4
)

// superseded remembers, for register keys, recent writes that lost to the
// key's winner: ones that arrived after a later write (they never took
// effect) and winners that a later write replaced. It exists so that an
// operator can ask why a value won (`rumor explain`); it is memory only,
// bounded, and forgets on restart.
type superseded struct {
	cache *lru.Cache[string, []crdt.Delta]
}

func newSuperseded() superseded {
	c, _ := lru.New[string, []crdt.Delta](supersededKeys) // errors only for a size <= 0
	return superseded{cache: c}
}

// remember notes that d lost on its key. Called with the store's lock held.
func (s superseded) remember(d crdt.Delta) {
	if s.cache == nil || crdt.IsSet(crdt.NamespaceOf(d.Key)) {
		return
	}
	old, _ := s.cache.Peek(d.Key)
	for _, o := range old {
		if o.Equal(d) {
			return
		}
	}
	next := append([]crdt.Delta{d}, old...)
	if len(next) > supersededPerKey {
		next = next[:supersededPerKey]
	}
	s.cache.Add(d.Key, next)
}

// Superseded returns recent writes to key that lost to its current winner,
// newest first (at most a few; none for kernel keys, whose records are all
// kept in the entry).
func (s *Store) Superseded(key string) []crdt.Delta {
	if s.lost.cache == nil {
		return nil
	}
	ds, _ := s.lost.cache.Get(key)
	return append([]crdt.Delta(nil), ds...)
}
