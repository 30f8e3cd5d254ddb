package store

import (
	"strings"

	"github.com/rumor-dev/rumor/crdt"
)

// refutedLocked reports whether d is an accusation that its target has
// already refuted here: its member entry announces a higher incarnation
// (crdt.Refuted). Such a write is not stored. Called with s.mu held.
func (s *Store) refutedLocked(d crdt.Delta) bool {
	if !strings.HasPrefix(d.Key, "node/") {
		return false
	}
	node, accuser, ok := crdt.SplitNodeKey(d.Key)
	if !ok || accuser == "" {
		return false
	}
	m, ok := s.entries.Get(crdt.NodeKey(node))
	if !ok || len(m.Deltas) == 0 {
		return false
	}
	return crdt.Refuted(d, crdt.Announced(m.Winner()))
}

// dropRefutedLocked removes the accusations of d's node that d, a member
// entry's new winner, refutes, and returns how many. Like Collect, it
// fires no watch events; the keys leave the data file at the next flush.
// Called with s.mu held.
func (s *Store) dropRefutedLocked(d crdt.Delta) int {
	inc := crdt.Announced(d)
	if inc == 0 {
		return 0
	}
	node, _, _ := crdt.SplitNodeKey(d.Key)
	n := 0
	for _, key := range s.entries.accusations(node) {
		e, ok := s.entries.Get(key)
		if !ok || len(e.Deltas) == 0 || !crdt.Refuted(e.Winner(), inc) {
			continue
		}
		s.entries.Delete(key)
		n++
		if s.dirty != nil && (s.ephemeral == nil || !s.ephemeral(key)) {
			s.dirty[key] = struct{}{}
		}
	}
	return n
}

// accusations returns the keys of the accusations of node held in x,
// node/<node>/<accuser>. An accusation's writer is its accuser (the write
// policy refuses any other), so the packed ones are found by looking up
// each writer that x holds a winning write of: as many lookups as there are
// writers, not keys.
func (x *index) accusations(node string) []string {
	prefix := crdt.NodeKey(node) + "/"
	var keys []string
	for _, w := range x.nodes.names {
		if w == "" {
			continue
		}
		key := prefix + w
		if _, ok := x.find(key); ok {
			keys = append(keys, key)
		}
	}
	for key := range x.sets {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	return keys
}
