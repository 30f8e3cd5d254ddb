// Package record is the encoding of the store's data file: one entry's
// deltas per bbolt key, and the certs (batch signatures) they name, each
// stored once. It is the store's own encoding rather than the network
// envelope's (wire.Encode), so that a file this build wrote is always
// readable by it, whatever the network's limits; and its decoder is
// strict, so a damaged file is reported, never half read.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// Version is the version of one stored entry's encoding. It leads
// every record so that a future format can be read side by side.
const Version = 2

// The on-disk form of one entry is a CBOR array
//
//	[Version, [[hlc, node, op, expiry, epoch, task, value, cert, pos], ...]]
//
// The key is the bbolt key and is not repeated per delta. cert is the
// number under which the delta's cert is stored in the certs bucket (0 for
// a local write whose batch was not signed yet; numbers are the file's
// own, given when a cert is first written) and pos the delta's place in
// it. A cert is stored once however many records use it:
//
//	certs bucket: cert number (8 bytes, big endian) -> CertVersion, the
//	              64-byte signature, then the cert's hashes (32 bytes each)
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
	Cert   uint64
	Pos    uint16
}

// CertVersion leads every stored cert.
const CertVersion = 1

// EncodeEntry encodes e's deltas for the entries bucket; certNum gives the
// number each cert is stored under.
func EncodeEntry(e crdt.Entry, certNum func(*crdt.Cert) uint64) ([]byte, error) {
	r := record{Version: Version, Deltas: make([]recDelta, len(e.Deltas))}
	for i, d := range e.Deltas {
		r.Deltas[i] = recDelta{
			HLC: uint64(d.Stamp.HLC), Node: d.Stamp.Node, Op: uint8(d.Op),
			Expiry: d.Expiry, Epoch: d.Epoch, Task: uint8(d.Task), Value: d.Value,
			Pos: d.Proof.Pos,
		}
		if c := d.Proof.Cert; c != nil {
			r.Deltas[i].Cert = certNum(c)
		}
	}
	b, err := wire.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("record: encode %q: %w", e.Key, err)
	}
	return b, nil
}

// CertKey is the bbolt key of cert number n.
func CertKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// EncodeCert encodes c for the certs bucket.
func EncodeCert(c *crdt.Cert) []byte {
	b := make([]byte, 1, 1+wire.SigSize+len(c.Hashes)*wire.HashSize)
	b[0] = CertVersion
	b = append(b, c.Sig[:]...)
	for _, h := range c.Hashes {
		b = append(b, h[:]...)
	}
	return b
}

// DecodeCert decodes a stored cert and its number (its bbolt key).
func DecodeCert(k, b []byte) (uint64, *crdt.Cert, error) {
	const head = 1 + wire.SigSize
	switch {
	case len(k) != 8 || binary.BigEndian.Uint64(k) == 0:
		return 0, nil, fmt.Errorf("%w: cert number %x", ErrBad, k)
	case len(b) == 0 || b[0] != CertVersion:
		return 0, nil, fmt.Errorf("%w: cert of unknown version", ErrBad)
	case len(b) <= head || (len(b)-head)%wire.HashSize != 0 || (len(b)-head)/wire.HashSize > 1<<16:
		return 0, nil, fmt.Errorf("%w: cert of %d bytes", ErrBad, len(b))
	}
	c := &crdt.Cert{Hashes: make([][wire.HashSize]byte, (len(b)-head)/wire.HashSize)}
	copy(c.Sig[:], b[1:head])
	for i := range c.Hashes {
		copy(c.Hashes[i][:], b[head+i*wire.HashSize:])
	}
	return binary.BigEndian.Uint64(k), c, nil
}

// ErrBad is the cause of every decode failure; callers wrap it in
// ErrCorrupt with the file name.
var ErrBad = errors.New("bad record")

// DecodeEntry decodes a stored entry strictly: the bytes must be exactly
// one well-formed record of this version, the deltas must be what
// crdt.Entry.Apply produces (one winner for a register; for a kernel,
// records in strictly increasing crdt.CompareRecords order, already
// pruned), and every cert a delta names must be in certs. The result does
// not alias b.
func DecodeEntry(key string, b []byte, certs map[uint64]*crdt.Cert) (crdt.Entry, error) {
	var r record
	if err := wire.Unmarshal(b, &r); err != nil {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: %v", ErrBad, key, err)
	}
	if r.Version != Version {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: record version %d, this build reads %d", ErrBad, key, r.Version, Version)
	}
	if len(r.Deltas) == 0 {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: no deltas", ErrBad, key)
	}
	set := crdt.IsSet(crdt.NamespaceOf(key))
	if !set && len(r.Deltas) != 1 {
		return crdt.Entry{}, fmt.Errorf("%w: key %q: register with %d deltas", ErrBad, key, len(r.Deltas))
	}
	e := crdt.Entry{Key: key, Deltas: make([]crdt.Delta, len(r.Deltas))}
	for i, w := range r.Deltas {
		d := crdt.Delta{
			Key: key, Stamp: crdt.Stamp{HLC: crdt.HLC(w.HLC), Node: w.Node}, Op: crdt.Op(w.Op),
			Expiry: w.Expiry, Epoch: w.Epoch, Task: crdt.TaskState(w.Task), Value: w.Value,
		}
		if w.Cert == 0 {
			if w.Pos != 0 {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: position without a cert", ErrBad, key)
			}
		} else {
			c := certs[w.Cert]
			if c == nil {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: names cert %d, which the file does not hold", ErrBad, key, w.Cert)
			}
			if int(w.Pos) >= len(c.Hashes) {
				return crdt.Entry{}, fmt.Errorf("%w: key %q: position %d of a cert of %d", ErrBad, key, w.Pos, len(c.Hashes))
			}
			d.Proof = crdt.Proof{Cert: c, Pos: w.Pos}
		}
		if i > 0 && crdt.CompareRecords(e.Deltas[i-1], d) >= 0 {
			return crdt.Entry{}, fmt.Errorf("%w: key %q: records out of order at %d", ErrBad, key, i)
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
			return crdt.Entry{}, fmt.Errorf("%w: key %q: records not in canonical form", ErrBad, key)
		}
	}
	return e, nil
}
