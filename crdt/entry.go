package crdt

import "slices"

// Entry is the merged state of one key.
//
// For a register namespace (svc, bl, task, node) Deltas holds exactly one
// delta, the winning write. For a kernel it holds the lease records that can
// still matter to Resolve, sorted by stamp: Apply drops the others (see
// pruneRecords), so a kernel holds a few records per writer of its winning
// epoch however long the lease is renewed. Records are only ever kept or
// dropped, never rewritten, so each keeps its writer's signature. Entries
// are values: Apply and Merge never modify their arguments' slices, so an
// Entry may be shared with readers.
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
//
// For a kernel the result is the pruning of e's records and d, which
// depends only on the union of the records ever applied, whatever their
// order or repetitions. Apply reports no change exactly when the result
// equals e, such as for a record of a superseded epoch, or a renewal whose
// expiry an earlier renewal of the same writer and epoch already reaches.
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
	all := e.Deltas
	if i, found := slices.BinarySearchFunc(e.Deltas, d, compareRecords); !found {
		all = make([]Delta, 0, len(e.Deltas)+1)
		all = append(all, e.Deltas[:i]...)
		all = append(all, d)
		all = append(all, e.Deltas[i:]...)
	}
	out := pruneRecords(all)
	if slices.EqualFunc(out, e.Deltas, Delta.Equal) {
		return e, false
	}
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
