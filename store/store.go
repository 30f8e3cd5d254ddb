// Package store is rumor's replicated map: it merges deltas into per-key
// CRDT entries, answers reads by key and prefix, and fans changes out to
// watchers without ever blocking the apply path.
//
// A store made by New lives in memory only. A store made by Open is also
// kept in a bbolt data file: the in-memory map stays the read path, changed
// keys are written behind in group commits, and the HLC high-water mark and
// small metadata are written synchronously (see Open).
package store

import (
	"slices"
	"sort"
	"sync"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/store/kvhist"
	"github.com/rumor-dev/rumor/store/superseded"
	"github.com/rumor-dev/rumor/store/watch"
)

// Store is the replicated map. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	entries  *index
	watchers watch.Hub
	// dirty holds the keys changed since the last flush; nil when nothing
	// is persisted (New, or after Close). Guarded by mu.
	dirty map[string]struct{}
	// flushing counts keys taken from dirty whose flush has not committed.
	flushing int
	// ephemeral names keys never persisted (see Options.Ephemeral).
	ephemeral func(key string) bool

	// lost remembers recent losing writes per key, for explanations.
	lost superseded.Log
	// kvHist keeps recent writes per kv key (kv history).
	kvHist kvhist.History
	// conflicts are the conflict notes of the delta being applied.
	conflicts []watch.Event

	disk // persistence state, zero for New (persist.go)
}

// New returns an empty store.
func New() *Store {
	return &Store{entries: newIndex(0), lost: superseded.New()}
}

// Apply merges deltas into the store and returns those that changed an
// entry, in order. Watchers whose prefix matches see each change. Apply never
// blocks on a watcher: one whose buffer is full is dropped with
// watch.ErrSlow.
//
// An accusation that its target has refuted (crdt.Refuted) is not stored,
// and a member entry's new winner drops the accusations it refutes, without
// watch events (as Collect).
func (s *Store) Apply(ds ...crdt.Delta) []crdt.Delta {
	s.mu.Lock()
	defer s.mu.Unlock()
	var changed []crdt.Delta
	persist := false
	for _, d := range ds {
		if s.refutedLocked(d) {
			continue
		}
		var e crdt.Entry
		var prev crdt.Delta
		if !s.apply(d, &e, &prev) {
			s.publishConflicts()
			if d.Proof.Cert != nil && s.attachLocked(d) && s.dirty != nil && (s.ephemeral == nil || !s.ephemeral(d.Key)) {
				s.dirty[d.Key] = struct{}{}
				persist = true
			}
			continue
		}
		if s.dirty != nil && (s.ephemeral == nil || !s.ephemeral(d.Key)) {
			s.dirty[d.Key] = struct{}{}
			persist = true
		}
		if s.dropRefutedLocked(d) > 0 && s.dirty != nil {
			persist = true
		}
		changed = append(changed, d)
		s.watchers.Notify(watch.Event{Key: d.Key, Delta: d, Entry: e, Refresh: watch.IsRefresh(prev, d)})
		s.publishConflicts()
	}
	if persist {
		s.kickFlusher()
	}
	return changed
}

// apply merges d into its entry and reports whether the entry changed. When
// the new entry is not simply d as a register's winner, it sets *e to it;
// it sets *was to the entry's winner before, if it had one. Called with
// s.mu held.
func (s *Store) apply(d crdt.Delta, e *crdt.Entry, was *crdt.Delta) bool {
	x := s.entries
	if fits(d.Key, d) && !x.inSets(d.Key) {
		// A register whose winner is d or a packed entry: no entry is built.
		pos, ok := x.find(d.Key)
		if !ok {
			x.insertAt(pos, d)
			s.noteWin(d)
			return true
		}
		w := x.delta(x.at(x.slots[pos] - 1))
		if crdt.CompareWrites(d, w) <= 0 {
			if !w.Equal(d) {
				s.noteLoss(w, d) // arrived after a later write
			}
			return false
		}
		s.noteLoss(d, w) // replaced
		s.noteWin(d)
		*was = w
		x.replaceAt(pos, d)
		return true
	}
	prev, _ := x.Get(d.Key)
	next, ok := prev.Apply(d)
	if !ok {
		if len(prev.Deltas) > 0 && !prev.Winner().Equal(d) && !crdt.IsSet(crdt.NamespaceOf(d.Key)) {
			s.noteLoss(prev.Winner(), d) // arrived after a later write
		}
		return false
	}
	if len(prev.Deltas) > 0 {
		*was = prev.Winner()
		if !crdt.IsSet(crdt.NamespaceOf(d.Key)) {
			s.noteLoss(d, *was) // replaced
		}
	}
	s.noteWin(d)
	x.Put(d.Key, next)
	*e = next
	return true
}

// Attach gives stored deltas their proofs: each of ds that the store
// holds without one (a local write whose batch was signed after it was
// applied) takes ds's proof. Deltas the store does not hold (a later write
// replaced them) are skipped. It fires no watch events: the value did not
// change, only the evidence of who wrote it.
func (s *Store) Attach(ds []crdt.Delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	persist := false
	for _, d := range ds {
		if d.Proof.Cert == nil || !s.attachLocked(d) || s.dirty == nil || (s.ephemeral != nil && s.ephemeral(d.Key)) {
			continue
		}
		// A key still waiting for its flush is written with the proof
		// anyway (the flush reads the entry as it is then); one already
		// written (or being written) unsigned is written again.
		if _, waiting := s.dirty[d.Key]; !waiting {
			s.dirty[d.Key] = struct{}{}
			persist = true
		}
	}
	if persist {
		s.kickFlusher()
	}
}

// attachLocked sets d's proof on the stored delta equal to d if that one
// has none, and reports whether it did. Called with s.mu held.
func (s *Store) attachLocked(d crdt.Delta) bool {
	x := s.entries
	if pos, ok := x.find(d.Key); ok {
		r := x.at(x.slots[pos] - 1)
		if r.cert != nil || !x.delta(r).Equal(d) {
			return false
		}
		r.cert, r.pos = d.Proof.Cert, d.Proof.Pos
		return true
	}
	e, ok := x.sets[d.Key]
	if !ok {
		return false
	}
	i := slices.IndexFunc(e.Deltas, d.Equal)
	if i < 0 || e.Deltas[i].Proof.Cert != nil {
		return false
	}
	ds := slices.Clone(e.Deltas) // readers may hold e
	ds[i].Proof = d.Proof
	x.sets[d.Key] = crdt.Entry{Key: e.Key, Deltas: ds}
	return true
}

// Get returns the entry for key.
func (s *Store) Get(key string) (crdt.Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries.Get(key)
}

// List returns the entries whose key starts with prefix, sorted by key.
func (s *Store) List(prefix string) []crdt.Entry {
	out := s.ListUnordered(prefix)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ListUnordered returns the entries whose key starts with prefix, in no
// order: List without its sort, for callers that hash or filter every
// entry (anti-entropy), to whom sorting half a million keys costs more
// than the rest of their work.
func (s *Store) ListUnordered(prefix string) []crdt.Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries.List(prefix)
}

// Digest returns the digest of the store's entries with the registers
// whose winner is stamped after before left out (digest.Before; 0 leaves
// nothing out). The store keeps it up to date as entries change, so a
// cutoff of 0, or one that digest.Cutoff rounded, costs no visit of the
// entries (the first rounded one visits them once); any other hashes a
// copy of every entry, outside the store's lock.
func (s *Store) Digest(before crdt.HLC) digest.Digest {
	s.mu.Lock() // the tracker lets go of old slots as cutoffs advance
	d, ok := s.entries.sum.Before(before, s.entries.scan)
	s.mu.Unlock()
	if ok {
		return d
	}
	// A cutoff the tracker does not keep slots for (an older peer's, say):
	// hash a copy of the entries, not holding up writers meanwhile.
	return digest.Before(s.ListUnordered(""), before)
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries.Len()
}

// Snapshot restarts f (of Hub().Follow) at the present and returns the entries under its
// prefix as of then, sorted by key, with the cursor they are current at:
// no change is both in the snapshot and among f's next events, and none
// is in neither.
func (s *Store) Snapshot(f *watch.Follower) ([]crdt.Entry, watch.Cursor) {
	s.mu.RLock()
	c := s.watchers.Restart(f)
	out := s.entries.List(f.Prefix())
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, c
}

// PublishIf publishes the event note makes of key's entry
// (watch.Hub.Publish) if it reports true, with no change applied between
// the look and the publish. note must not call the store.
func (s *Store) PublishIf(key string, note func(crdt.Entry) (watch.Event, bool)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, _ := s.entries.Get(key)
	if ev, ok := note(e); ok {
		s.watchers.Publish(ev)
	}
}

// Hub returns the store's watch hub: its cursor, history size, and the
// events the agent publishes (expiries, owners down and up).
func (s *Store) Hub() *watch.Hub { return &s.watchers }

// Watch starts a watcher for keys with the given prefix (watch.Hub.Watch):
// it sees every change Apply makes from now on, until it falls more than
// buffer events behind and is dropped, or is closed, or the store closes.
func (s *Store) Watch(prefix string, buffer int) *watch.Watcher {
	return s.watchers.Watch(prefix, buffer)
}

// Watchers returns the number of active watchers.
func (s *Store) Watchers() int { return s.watchers.Len() }
