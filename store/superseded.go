package store

import "github.com/rumor-dev/rumor/crdt"

// Superseded returns recent writes to key that lost to its current winner,
// newest first (at most superseded.PerKey; none for kernel keys, whose
// records are all kept in the entry).
func (s *Store) Superseded(key string) []crdt.Delta { return s.lost.Of(key) }
