package store

import (
	"errors"
	"fmt"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// recordVersion is the version of one stored entry's encoding. It leads
// every record so that a future format can be read side by side.
const recordVersion = 2

// The on-disk form of one entry is a CBOR array
//
//	[recordVersion, [[hlc, node, op, expiry, epoch, task, value, sig, pos], ...]]
//
// The key is the bbolt key and is not repeated per delta. sig names the
// delta's cert in the certs bucket (the cert's 64-byte signature; empty for
// a local write whose batch was not signed yet) and pos is the delta's
// place in it. A cert is stored once however many records use it:
//
//	certs bucket: sig -> certVersion, then the cert's hashes (32 bytes each)
//
// This is the store's own encoding rather than wire.Encode: a file that
// this build wrote must always be readable by it, whatever the network
// envelope's limits.
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
	Sig    []byte
	Pos    uint16
}

// certVersion leads every stored cert.
const certVersion = 1

// encodeEntry encodes e's deltas for the entries bucket.
func encodeEntry(e crdt.Entry) ([]byte, error) {
	r := record{Version: recordVersion, Deltas: make([]recDelta, len(e.Deltas))}
	for i, d := range e.Deltas {
		r.Deltas[i] = recDelta{
			HLC: uint64(d.Stamp.HLC), Node: d.Stamp.Node, Op: uint8(d.Op),
			Expiry: d.Expiry, Epoch: d.Epoch, Task: uint8(d.Task), Value: d.Value,
			Sig: []byte{}, Pos: d.Proof.Pos,
		}
		if c := d.Proof.Cert; c != nil {
			r.Deltas[i].Sig = c.Sig[:]
		}
	}
	b, err := wire.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("store: encode %q: %w", e.Key, err)
	}
	return b, nil
}

// encodeCert encodes c's hashes for the certs bucket.
func encodeCert(c *crdt.Cert) []byte {
	b := make([]byte, 1, 1+len(c.Hashes)*wire.HashSize)
	b[0] = certVersion
	for _, h := range c.Hashes {
		b = append(b, h[:]...)
	}
	return b
}

// decodeCert decodes a stored cert; sig is its bbolt key.
func decodeCert(sig, b []byte) (*crdt.Cert, error) {
	switch {
	case len(sig) != wire.SigSize:
		return nil, fmt.Errorf("%w: cert key of %d bytes", errBadRecord, len(sig))
	case len(b) == 0 || b[0] != certVersion:
		return nil, fmt.Errorf("%w: cert of unknown version", errBadRecord)
	case (len(b)-1)%wire.HashSize != 0 || len(b) == 1 || (len(b)-1)/wire.HashSize > 1<<16:
		return nil, fmt.Errorf("%w: cert of %d bytes", errBadRecord, len(b))
	}
	c := &crdt.Cert{Hashes: make([][wire.HashSize]byte, (len(b)-1)/wire.HashSize)}
	copy(c.Sig[:], sig)
	for i := range c.Hashes {
		copy(c.Hashes[i][:], b[1+i*wire.HashSize:])
	}
	return c, nil
}

// errBadRecord is the cause of every decode failure; callers wrap it in
// ErrCorrupt with the file name.
var errBadRecord = errors.New("bad record")

// decodeEntry decodes a stored entry strictly: the bytes must be exactly
// one well-formed record of this version, the deltas must be what
// crdt.Entry.Apply produces (one winner for a register; for a kernel,
// records in strictly increasing crdt.CompareRecords order, already
// pruned), and every cert a delta names must be in certs. The result does
// not alias b.
func decodeEntry(key string, b []byte, certs map[[wire.SigSize]byte]*crdt.Cert) (crdt.Entry, error) {
	var r record
	if err := wire.Unmarshal(b, &r); err != nil {
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
		switch len(w.Sig) {
		case 0:
			if w.Pos != 0 {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: position without a cert", errBadRecord, key)
			}
		case wire.SigSize:
			c := certs[[wire.SigSize]byte(w.Sig)]
			if c == nil {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: names a cert the file does not hold", errBadRecord, key)
			}
			if int(w.Pos) >= len(c.Hashes) {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: position %d of a cert of %d", errBadRecord, key, w.Pos, len(c.Hashes))
			}
			d.Proof = crdt.Proof{Cert: c, Pos: w.Pos}
		default:
			return crdt.Entry{}, fmt.Errorf("%w: key %q: cert name of %d bytes", errBadRecord, key, len(w.Sig))
		}
		if i > 0 && crdt.CompareRecords(e.Deltas[i-1], d) >= 0 {
			return crdt.Entry{}, fmt.Errorf("%w: key %q: records out of order at %d", errBadRecord, key, i)
		}
		e.Deltas[i] = d
	}
	if set {
		// A kernel's records are pruned by the lease rule as they merge,
		// which only crdt knows: rebuild the entry and require the same.
		canon := crdt.Entry{Key: key}
		for _, d := range e.Deltas {
			canon, _ = canon.Apply(d)
		}
		if !canon.Equal(e) {
			return crdt.Entry{}, fmt.Errorf("%w: key %q: records not in canonical form", errBadRecord, key)
		}
	}
	return e, nil
}
