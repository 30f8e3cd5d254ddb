// Package wire is rumor's canonical encoding: the envelope that carries
// batches of signed deltas over gossip and anti-entropy, the canonical bytes
// of one delta that its writer's signature covers (see Hash), and the one
// set of strict CBOR options every other encoding of the module uses
// (Marshal, Unmarshal). Decoding is strict and bounded: a malformed or
// hostile envelope is refused with an error and never panics.
//
// Version 3, the only one this build reads and writes, is the CBOR array
//
//	[3, [node, ...], [cert, ...], [delta, ...]]
//	cert  = [n, sig, count, [[pos, hash], ...]]
//	delta = [key, hlc, n, op, expiry, epoch, task, value, c, pos]
//
// where n indexes the node table (each writer is named once per envelope)
// and c the cert table. A cert is a writer's signature (64 bytes, see
// package identity) over the hashes of the count deltas of one published
// batch; the delta at position pos of a cert is one of them. The hashes of
// positions whose delta is in the envelope are not sent: the reader
// recomputes them from the deltas, so a gossip batch, which carries all of
// its cert's deltas, costs 64 bytes of signature and nothing more. An
// anti-entropy chunk that carries only some deltas of a cert sends the
// hashes of the others. Every node and cert of the tables is used, each
// position of a cert is filled exactly once (by a delta or a hash), and a
// delta's writer is its cert's writer. Versions 1 and 2 carried unsigned
// deltas; they are refused as ErrVersion.
package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

// Version is the envelope version this build writes and reads.
const Version = 3

// SigSize is the size of a cert's signature (ed25519).
const SigSize = 64

// Limits bound what Decode accepts. A zero field takes its value from
// DefaultLimits.
type Limits struct {
	MaxDeltas   int // deltas per envelope
	MaxKeyBytes int // bytes per key
	MaxValue    int // bytes per delta value
	MaxNode     int // bytes per node id
	MaxCert     int // deltas one cert may cover
}

// DefaultLimits are the limits used when none are given.
var DefaultLimits = Limits{MaxDeltas: 4096, MaxKeyBytes: 512, MaxValue: 64 << 10, MaxNode: 128, MaxCert: 4096}

func (l Limits) orDefaults() Limits {
	d := DefaultLimits
	for _, f := range []struct{ v, def *int }{{&l.MaxDeltas, &d.MaxDeltas}, {&l.MaxKeyBytes, &d.MaxKeyBytes}, {&l.MaxValue, &d.MaxValue}, {&l.MaxNode, &d.MaxNode}, {&l.MaxCert, &d.MaxCert}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// Errors returned by Decode, for counting rejections by reason.
var (
	ErrVersion   = errors.New("wire: unknown envelope version")
	ErrMalformed = errors.New("wire: malformed envelope")
	ErrLimit     = errors.New("wire: envelope exceeds a limit")
	// ErrUnsigned is returned by Encode for a delta without a proof:
	// only signed deltas travel.
	ErrUnsigned = errors.New("wire: delta is not signed")
)

// Size returns an upper bound of the encoded size of one signed delta
// inside an envelope, for batching to a byte budget: its writer and its
// cert's signature counted as if they were its own.
func Size(d crdt.Delta) int {
	// array header + small ints ≤ 9 bytes each + string/bytes headers ≤ 9 each.
	return 10*9 + len(d.Key) + len(d.Stamp.Node) + len(d.Value) + SigSize
}

// The module's one set of CBOR options: deterministic encoding, and
// decoding that refuses indefinite lengths, tags, duplicate map keys and
// unknown fields. The store's records and anti-entropy's frames use them.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	if decMode, err = (cbor.DecOptions{
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

// Marshal encodes v with the module's CBOR options.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode: %w", err)
	}
	return b, nil
}

// Unmarshal decodes b into v strictly, with the module's CBOR options: b
// must be exactly one well-formed item of v's shape.
func Unmarshal(b []byte, v any) error { return decMode.Unmarshal(b, v) }
