package store

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

// recordVersion is the version of one stored entry's encoding. It leads
// every record so that a future format can be read side by side.
const recordVersion = 1

// The on-disk form of one entry is a CBOR array
//
//	[recordVersion, [[hlc, node, op, expiry, epoch, task, value], ...]]
//
// The key is the bbolt key and is not repeated per delta. This is the
// store's own encoding rather than wire.Encode: the network envelope caps a
// batch at 64 Ki deltas, while a long-held kernel lease accumulates one
// record per renewal, and a file that this build wrote must always be
// readable by it.
type record struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Deltas  []recDelta
}

type recDelta struct {
	_      struct{} `cbor:",toarray"`
	HLC    uint64
	Node   string
	Op     uint8
	Expiry int64
	Epoch  uint64
	Task   uint8
	Value  []byte
}

var (
	recEnc cbor.EncMode
	recDec cbor.DecMode
)

func init() {
	var err error
	if recEnc, err = (cbor.EncOptions{}).EncMode(); err != nil {
		panic(err)
	}
	// Strict: definite lengths only, no tags, no maps, exact array lengths
	// (toarray structs), valid UTF-8, no trailing bytes, no integer overflow.
	if recDec, err = (cbor.DecOptions{
		MaxArrayElements:  1 << 24,
		MaxMapPairs:       16,
		MaxNestedLevels:   8,
		IndefLength:       cbor.IndefLengthForbidden,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// encodeEntry encodes e's deltas for the entries bucket.
func encodeEntry(e crdt.Entry) ([]byte, error) {
	r := record{Version: recordVersion, Deltas: make([]recDelta, len(e.Deltas))}
	for i, d := range e.Deltas {
		r.Deltas[i] = recDelta{
			HLC: uint64(d.Stamp.HLC), Node: d.Stamp.Node, Op: uint8(d.Op),
			Expiry: d.Expiry, Epoch: d.Epoch, Task: uint8(d.Task), Value: d.Value,
		}
	}
	b, err := recEnc.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("store: encode %q: %w", e.Key, err)
	}
	return b, nil
}

// errBadRecord is the cause of every decode failure; callers wrap it in
// ErrCorrupt with the file name.
var errBadRecord = errors.New("bad record")

// decodeEntry decodes a stored entry strictly: the bytes must be exactly
// one well-formed record of this version, holding one winner for a
// register, or for a kernel records in strictly increasing
// crdt.CompareRecords order (as crdt.Entry.Apply keeps them). A kernel
// entry comes back as Apply would make it from those records: a file
// written before merges pruned lease records may hold records that can no
// longer matter, and they go here. The result does not alias b.
func decodeEntry(key string, b []byte) (crdt.Entry, error) {
	var r record
	if err := recDec.Unmarshal(b, &r); err != nil {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: %v", errBadRecord, key, err)
	}
	if r.Version != recordVersion {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: record version %d, this build reads %d", errBadRecord, key, r.Version, recordVersion)
	}
	if len(r.Deltas) == 0 {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: no deltas", errBadRecord, key)
	}
	set := crdt.IsSet(crdt.NamespaceOf(key))
	if !set && len(r.Deltas) != 1 {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: register with %d deltas", errBadRecord, key, len(r.Deltas))
	}
	e := crdt.Entry{Key: key, Deltas: make([]crdt.Delta, len(r.Deltas))}
	for i, w := range r.Deltas {
		d := crdt.Delta{
			Key: key, Stamp: crdt.Stamp{HLC: crdt.HLC(w.HLC), Node: w.Node}, Op: crdt.Op(w.Op),
			Expiry: w.Expiry, Epoch: w.Epoch, Task: crdt.TaskState(w.Task), Value: w.Value,
		}
		if i > 0 && crdt.CompareRecords(e.Deltas[i-1], d) >= 0 {
			return crdt.Entry{}, fmt.Errorf("%w: key %q: records out of order at %d", errBadRecord, key, i)
		}
		e.Deltas[i] = d
	}
	if set {
		canon := crdt.Entry{Key: key}
		for _, d := range e.Deltas {
			canon, _ = canon.Apply(d)
		}
		return canon, nil
	}
	return e, nil
}
