package store

import "github.com/rumor-dev/rumor/crdt"

// Usage is how much one namespace holds.
type Usage struct {
	// Keys is the number of keys, tombstones included.
	Keys int
	// Bytes approximates the payload held: for every record kept under
	// every key, the key, the writer's node id and the encoded value. It
	// leaves out fixed-size fields and Go's map and slice overhead (about
	// 250 bytes per key more in memory).
	Bytes int64
}

// Usage returns the keys and approximate bytes held, per namespace. It
// reads every entry under the read lock, so call it at scrape rates, not
// per write.
func (s *Store) Usage() map[crdt.Namespace]Usage {
	out := make(map[crdt.Namespace]Usage)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, e := range s.entries {
		ns := crdt.NamespaceOf(k)
		u := out[ns]
		u.Keys++
		for _, d := range e.Deltas {
			u.Bytes += int64(len(d.Key) + len(d.Stamp.Node) + len(d.Value))
		}
		out[ns] = u
	}
	return out
}
