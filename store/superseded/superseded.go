// Package superseded remembers, for register keys, recent writes that lost
// to the key's winner: ones that arrived after a later write (they never
// took effect) and winners that a later write replaced. It exists so that
// an operator can ask why a value won (`rumor explain`); it is memory
// only, bounded, and forgets on restart.
package superseded

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/rumor-dev/rumor/crdt"
)

// Memory bounds: the most recently touched keys, and per key the latest
// writes that lost.
const (
	Keys   = 4096
	PerKey = 4
)

// Log holds the losers. The zero value remembers nothing. It is safe for
// concurrent use.
type Log struct {
	cache *lru.Cache[string, []crdt.Delta]
}

// New returns an empty log.
func New() Log {
	c, _ := lru.New[string, []crdt.Delta](Keys) // errors only for a size <= 0
	return Log{cache: c}
}

// Remember notes that d lost on its key. Kernel records are not kept: an
// entry holds all of them.
func (l Log) Remember(d crdt.Delta) {
	if l.cache == nil || crdt.IsSet(crdt.NamespaceOf(d.Key)) {
		return
	}
	old, _ := l.cache.Peek(d.Key)
	for _, o := range old {
		if o.Equal(d) {
			return
		}
	}
	next := append([]crdt.Delta{d}, old...)
	if len(next) > PerKey {
		next = next[:PerKey]
	}
	l.cache.Add(d.Key, next)
}

// Of returns recent writes to key that lost to its winner, newest first.
func (l Log) Of(key string) []crdt.Delta {
	if l.cache == nil {
		return nil
	}
	ds, _ := l.cache.Get(key)
	return append([]crdt.Delta(nil), ds...)
}
