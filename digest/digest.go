// Package digest summarizes a replica's entries so that two replicas can
// find where they differ without sending them: per namespace, Buckets
// buckets of keys, each holding the XOR of its entries' hashes. Equal
// states have equal digests, and XOR makes a bucket's hash independent of
// the order entries are visited, so a Tracker can keep a digest up to date
// entry by entry as the state changes, instead of hashing every entry for
// each comparison.
//
// The package is pure: no IO, no clock, no goroutines.
package digest

import (
	"encoding/binary"
	"hash/fnv"
	"slices"

	"github.com/rumor-dev/rumor/crdt"
)

// Buckets is the number of hash buckets per namespace.
const Buckets = 256

// Digest holds, per namespace (in crdt.Namespaces order), the XOR of the
// hashes of the entries in each bucket.
type Digest [][Buckets]uint64

// New returns the digest of no entries.
func New() Digest { return make(Digest, len(crdt.Namespaces)) }

// BucketID names one bucket of one namespace.
type BucketID struct {
	NS     uint8
	Bucket uint16
}

// Namespace returns the index in crdt.Namespaces of key's namespace.
func Namespace(key string) (int, bool) {
	i := slices.Index(crdt.Namespaces, crdt.NamespaceOf(key))
	return i, i >= 0
}

// BucketOf returns key's bucket.
func BucketOf(key string) uint16 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return uint16(h.Sum32() % Buckets)
}

// Hash hashes a key and deltas' full content (proofs aside: who holds
// which signature of the same write does not matter).
func Hash(key string, ds []crdt.Delta) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v uint64) { binary.LittleEndian.PutUint64(b[:], v); _, _ = h.Write(b[:]) }
	str := func(s string) { put(uint64(len(s))); _, _ = h.Write([]byte(s)) }
	str(key)
	for _, d := range ds {
		put(uint64(d.Stamp.HLC))
		str(d.Stamp.Node)
		put(uint64(d.Op))
		put(uint64(d.Expiry))
		put(d.Epoch)
		put(uint64(d.Task))
		str(string(d.Value))
	}
	return h.Sum64()
}

// Of computes the digest of a set of entries.
func Of(entries []crdt.Entry) Digest { return Before(entries, 0) }

// Before computes the digest of the entries as a periodic exchange
// compares them: a register whose winner is stamped after before is left
// out (a write that gossip is likely still delivering; 0 leaves out
// nothing). A kernel is compared whole, whatever its stamps: its records
// are pruned to a bounded set in which the newest renewal replaces the
// older ones, so a lease renewed every ttl/3 — more often than the cutoff
// lags — always has a fresh record and never an older renewal. Leaving
// fresh records out would leave every renewal out: an agent that missed
// the renewals by gossip would see the lease expire while its holder
// renews it, for as long as it does (make chaos' "holders-disagree").
// Compared whole, a kernel costs at most one small entry sent again when
// an exchange falls within a renewal's gossip delay.
func Before(entries []crdt.Entry, before crdt.HLC) Digest {
	d := New()
	for _, e := range entries {
		ns, ok := Namespace(e.Key)
		if !ok || len(e.Deltas) == 0 {
			continue
		}
		if before != 0 && !crdt.IsSet(crdt.Namespaces[ns]) && e.Deltas[len(e.Deltas)-1].Stamp.HLC > before {
			continue
		}
		d[ns][BucketOf(e.Key)] ^= Hash(e.Key, e.Deltas)
	}
	return d
}

// Diff returns the buckets in which a and b differ.
func Diff(a, b Digest) []BucketID {
	var out []BucketID
	for ns := range min(len(a), len(b)) {
		for i := range Buckets {
			if a[ns][i] != b[ns][i] {
				out = append(out, BucketID{NS: uint8(ns), Bucket: uint16(i)})
			}
		}
	}
	return out
}

// xor folds o into d.
func (d Digest) xor(o Digest) {
	for ns := range d {
		for i := range Buckets {
			d[ns][i] ^= o[ns][i]
		}
	}
}
