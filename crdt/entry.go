package crdt

import "slices"

// Entry is the merged state of one key.
//
// For a register namespace (svc, bl, task, node) Deltas holds exactly one
// delta, the winning write. For a kernel it holds the set of lease records,
// sorted by stamp. Entries are values: Apply and Merge never modify their
// arguments' slices, so an Entry may be shared with readers.
type Entry struct {
	Key    string
	Deltas []Delta
}

// IsSet reports whether the entry's namespace keeps a set of records rather
// than a single winning write.
func IsSet(ns Namespace) bool { return ns == NSKernel }

// Winner returns the winning write of a register entry (the zero Delta for an
// empty entry). For a kernel entry it returns the latest record.
func (e Entry) Winner() Delta {
	if len(e.Deltas) == 0 {
		return Delta{}
	}
	return e.Deltas[len(e.Deltas)-1]
}

// Apply merges one delta into e and reports whether e changed. A delta for
// another key is ignored.
func (e Entry) Apply(d Delta) (Entry, bool) {
	if e.Key == "" && len(e.Deltas) == 0 {
		e.Key = d.Key
	}
	if d.Key != e.Key {
		return e, false
	}
	ns := NamespaceOf(d.Key)
	if !IsSet(ns) {
		if len(e.Deltas) == 1 && compareWrites(ns, d, e.Deltas[0]) <= 0 {
			return e, false
		}
		return Entry{Key: e.Key, Deltas: []Delta{d}}, true
	}
	i, found := slices.BinarySearchFunc(e.Deltas, d, compareRecords)
	if found {
		return e, false
	}
	out := make([]Delta, 0, len(e.Deltas)+1)
	out = append(out, e.Deltas[:i]...)
	out = append(out, d)
	out = append(out, e.Deltas[i:]...)
	return Entry{Key: e.Key, Deltas: out}, true
}

// CompareWrites orders two writes to the same register key the way
// Entry.Apply does: it returns +1 if a wins over b, -1 if b wins over a and
// 0 if they are the same write. Applying a to an entry whose winner is b
// changes the entry exactly when the result is positive. It is meaningless
// for kernel records, which are kept as a set.
func CompareWrites(a, b Delta) int { return compareWrites(NamespaceOf(a.Key), a, b) }

// Merge returns the merge of two entries for the same key. It is
// commutative, associative and idempotent.
func Merge(a, b Entry) Entry {
	for _, d := range b.Deltas {
		a, _ = a.Apply(d)
	}
	return a
}

// Equal reports whether two entries hold the same state.
func (e Entry) Equal(o Entry) bool {
	return e.Key == o.Key && slices.EqualFunc(e.Deltas, o.Deltas, Delta.Equal)
}
