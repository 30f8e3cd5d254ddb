package crdt

// Announced returns the incarnation that d, a write to a member entry
// node/<id>, announces: 0 for a delete, an undecodable value or a key of
// another shape.
func Announced(d Delta) uint64 {
	if d.Op != OpPut || !IsMemberKey(d.Key) {
		return 0
	}
	var v MemberValue
	if Decode(d.Value, &v) != nil {
		return 0
	}
	return v.Inc
}

// Refuted reports whether d, a write to an accusation node/<target>/<accuser>,
// accuses an incarnation below inc, the one target has announced. Such an
// accusation is moot: its target answered it by raising its incarnation
// (or restarted), and no view counts an accusation of an older incarnation.
// A store therefore drops it, and refuses it when it arrives later, so the
// accusations of a partition are gone once its heal is refuted instead of
// staying in every store for good.
//
// Dropping is a function of the merged state (an accusation is kept only
// while no member write of its target announces a higher incarnation, and
// incarnations only grow), so replicas that drop at different moments
// still converge. It relies on an accuser never writing a later accusation
// of a lower incarnation than its earlier one, which the failure detector
// never does: it accuses the incarnation it knows, and that only grows.
func Refuted(d Delta, inc uint64) bool {
	if inc == 0 || d.Op != OpPut {
		return false
	}
	if _, accuser, ok := SplitNodeKey(d.Key); !ok || accuser == "" {
		return false
	}
	var v SuspectValue
	if Decode(d.Value, &v) != nil {
		return false
	}
	return v.Inc < inc
}
