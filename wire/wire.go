// Package wire encodes batches of deltas for the network: a versioned,
// length-checked CBOR envelope. Decoding is strict and bounded, so a
// malformed or hostile message is refused with an error and never panics.
//
// Version 2, which this build writes, is the CBOR array
//
//	[2, [node, ...], [[key, hlc, n, op, expiry, epoch, task, value], ...]]
//
// where n indexes the node table: each writer's node id appears once per
// envelope, not once per delta (a gossip batch has one writer, so this
// saves ~53 bytes a delta). Every node of the table is used and appears
// once. Version 1, which this build still reads (and writes on request,
// for older peers), repeats the writer in every delta:
//
//	[1, [[key, hlc, node, op, expiry, epoch, task, value], ...]]
package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

// Version is the envelope version Encode writes. Decode reads it and
// version 1.
const Version = 2

// Version1 is the previous envelope version, which Decode still reads and
// EncodeVersion writes, for peers that read nothing newer.
const Version1 = 1

// Limits bound what Decode accepts. The zero value means DefaultLimits.
type Limits struct {
	MaxDeltas   int // deltas per envelope
	MaxKeyBytes int // bytes per key
	MaxValue    int // bytes per delta value
	MaxNode     int // bytes per node id
}

// DefaultLimits are the limits used when none are given.
var DefaultLimits = Limits{MaxDeltas: 4096, MaxKeyBytes: 512, MaxValue: 64 << 10, MaxNode: 128}

// Errors returned by Decode, for counting rejections by reason.
var (
	ErrVersion   = errors.New("wire: unknown envelope version")
	ErrMalformed = errors.New("wire: malformed envelope")
	ErrLimit     = errors.New("wire: envelope exceeds a limit")
)

// delta is the wire form of crdt.Delta.
type delta struct {
	_      struct{} `cbor:",toarray"`
	Key    string
	HLC    uint64
	Node   string
	Op     uint8
	Expiry int64
	Epoch  uint64
	Task   uint8
	Value  []byte
}

type envelope struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Deltas  []delta
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = (cbor.EncOptions{}).EncMode(); err != nil {
		panic(err)
	}
	if decMode, err = (cbor.DecOptions{
		MaxArrayElements:  1 << 16,
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

// Encode encodes deltas as one envelope of the current Version.
func Encode(ds []crdt.Delta) ([]byte, error) { return EncodeVersion(ds, Version) }

// EncodeVersion encodes deltas as one envelope of version v (Version or
// Version1).
func EncodeVersion(ds []crdt.Delta, v int) ([]byte, error) {
	switch v {
	case Version:
		return encode2(ds)
	case Version1:
		return encode1(ds)
	}
	return nil, fmt.Errorf("wire: encode: %w: %d", ErrVersion, v)
}

func encode1(ds []crdt.Delta) ([]byte, error) {
	env := envelope{Version: Version1, Deltas: make([]delta, len(ds))}
	for i, d := range ds {
		env.Deltas[i] = delta{
			Key: d.Key, HLC: uint64(d.Stamp.HLC), Node: d.Stamp.Node, Op: uint8(d.Op),
			Expiry: d.Expiry, Epoch: d.Epoch, Task: uint8(d.Task), Value: d.Value,
		}
	}
	b, err := encMode.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("wire: encode: %w", err)
	}
	return b, nil
}

// Size returns the encoded size of one delta inside an envelope, for
// batching to a byte budget: an upper bound in either version (its writer
// counted as if it were in the delta).
func Size(d crdt.Delta) int {
	// array header + small ints ≤ 9 bytes each + string/bytes headers ≤ 9 each.
	return 8*9 + len(d.Key) + len(d.Stamp.Node) + len(d.Value)
}

// Decode decodes an envelope of version 1 or 2, enforcing lim (zero value:
// DefaultLimits). It checks structure and sizes only; what a delta may do
// is the caller's policy.
func Decode(b []byte, lim Limits) ([]crdt.Delta, error) {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	v, ok := peekVersion(b)
	if !ok {
		// Not the start of an array with a small version: let the decoder
		// say what is wrong (or read a version in a longer form).
		var head struct {
			_       struct{} `cbor:",toarray"`
			Version uint64
			Rest    cbor.RawMessage
		}
		if err := decMode.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		v = head.Version
	}
	switch v {
	case Version:
		return decode2(b, lim)
	case Version1:
		return decode1(b, lim)
	}
	return nil, fmt.Errorf("%w: %d (this build reads %d and %d)", ErrVersion, v, Version1, Version)
}

// peekVersion reads the version of an envelope that starts, as every
// envelope Encode writes does, with the header of a short array and a
// version below 24 (one byte each in CBOR).
func peekVersion(b []byte) (uint64, bool) {
	if len(b) < 2 || b[0]&0xe0 != 0x80 || b[0]&0x1f >= 24 || b[1] >= 24 {
		return 0, false
	}
	return uint64(b[1]), true
}

func decode1(b []byte, lim Limits) ([]crdt.Delta, error) {
	var env envelope
	if err := decMode.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(env.Deltas) > lim.MaxDeltas {
		return nil, fmt.Errorf("%w: %d deltas, limit %d", ErrLimit, len(env.Deltas), lim.MaxDeltas)
	}
	out := make([]crdt.Delta, len(env.Deltas))
	for i, w := range env.Deltas {
		switch {
		case len(w.Key) > lim.MaxKeyBytes:
			return nil, fmt.Errorf("%w: key of %d bytes, limit %d", ErrLimit, len(w.Key), lim.MaxKeyBytes)
		case len(w.Value) > lim.MaxValue:
			return nil, fmt.Errorf("%w: value of %d bytes, limit %d", ErrLimit, len(w.Value), lim.MaxValue)
		case len(w.Node) > lim.MaxNode:
			return nil, fmt.Errorf("%w: node id of %d bytes, limit %d", ErrLimit, len(w.Node), lim.MaxNode)
		}
		out[i] = crdt.Delta{
			Key: w.Key, Stamp: crdt.Stamp{HLC: crdt.HLC(w.HLC), Node: w.Node}, Op: crdt.Op(w.Op),
			Expiry: w.Expiry, Epoch: w.Epoch, Task: crdt.TaskState(w.Task), Value: w.Value,
		}
	}
	return out, nil
}
