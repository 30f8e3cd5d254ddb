package store

import "github.com/rumor-dev/rumor/crdt"

// Usage is how much one namespace holds.
type Usage struct {
	// Keys is the number of keys, tombstones included.
	Keys int
	// Bytes approximates the payload held: for every record kept under
	// every key, the key, the writer's node id and the encoded value. It
	// leaves out fixed-size fields and the index (about 60 bytes per
	// register key more in memory), and counts the node id with every
	// record although a register's writer id is kept once per writer.
	Bytes int64
}

// Usage returns the keys and approximate bytes held, per namespace. It
// reads every entry under the read lock, so call it at scrape rates, not
// per write.
func (s *Store) Usage() map[crdt.Namespace]Usage {
	out := make(map[crdt.Namespace]Usage)
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := s.entries
	for i := range x.n {
		r := x.at(uint32(i))
		ns := crdt.NamespaceOf(r.key())
		u := out[ns]
		u.Keys++
		u.Bytes += int64(r.klen) + int64(len(x.nodes.names[r.node])) + int64(r.vlen)
		out[ns] = u
	}
	for k, e := range x.sets {
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
