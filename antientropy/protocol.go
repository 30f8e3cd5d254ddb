// Package antientropy repairs what gossip missed. Two agents exchange
// digests of their state — for every namespace, a hash per bucket of keys —
// and then send each other only the entries in buckets that differ. One
// exchange makes both sides hold the merge of both states, whatever was
// lost, partitioned away or restarted. This, not gossip alone, is what
// guarantees convergence.
//
// The protocol runs over any byte stream (a libp2p stream in the agent, a
// pipe in tests) as length-prefixed frames with hard size limits:
//
//	initiator                         responder
//	  digest  ───────────────────────▶
//	          ◀───────────────────────  need (differing buckets)
//	          ◀───────────────────────  entries… done
//	  entries… done ─────────────────▶
//
// Entries travel as signed deltas (wire envelopes, each delta with its
// writer's cert), so a receiver trusts them exactly as far as their
// signatures go, whoever relays them: the session only moves bytes, and
// State.Merge (the agent's one ingest path) decides what is valid. A
// Syncer (session.go) runs the sessions of an agent.
package antientropy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// Protocol returns the libp2p protocol id of the exchange for a cluster,
// so agents of different clusters never merge each other's state. Version
// 3 carries signed deltas; versions 1 and 2 carried unsigned ones and are
// neither spoken nor served.
func Protocol(cluster string) string { return "/rumor/" + cluster + "/sync/3" }

// Buckets is the number of hash buckets per namespace.
const Buckets = 256

// MaxFrame bounds one frame on the wire.
const MaxFrame = 4 << 20

// chunkBytes is the target size of one entries frame.
const chunkBytes = 256 << 10

// ErrProtocol is returned for a peer that breaks the protocol.
var ErrProtocol = errors.New("antientropy: protocol error")

// State is the local replica as a session sees it. Implementations are
// safe for concurrent use.
type State interface {
	// Entries returns every entry whose key starts with prefix.
	Entries(prefix string) []crdt.Entry
	// Merge takes deltas received from a peer through the agent's ingest
	// path (which verifies and judges them) and returns how many changed
	// the local state.
	Merge(ds []crdt.Delta) int
}

// Digest holds, per namespace, the XOR of the hashes of the entries in
// each bucket. Equal states have equal digests; XOR keeps a bucket's hash
// independent of the order entries are visited.
type Digest [][Buckets]uint64

// BucketID names one bucket of one namespace.
type BucketID struct {
	NS     uint8
	Bucket uint16
}

func nsIndex(key string) (int, bool) {
	i := slices.Index(crdt.Namespaces, crdt.NamespaceOf(key))
	return i, i >= 0
}

func bucketOf(key string) uint16 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return uint16(h.Sum32() % Buckets)
}

// deltasHash hashes a key and deltas' full content (proofs aside: who
// holds which signature of the same write does not matter).
func deltasHash(key string, ds []crdt.Delta) uint64 {
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

// DigestOf computes the digest of a set of entries.
func DigestOf(entries []crdt.Entry) Digest { return DigestBefore(entries, 0) }

// DigestBefore computes the digest of the entries as a periodic exchange
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
func DigestBefore(entries []crdt.Entry, before crdt.HLC) Digest {
	d := make(Digest, len(crdt.Namespaces))
	for _, e := range entries {
		ns, ok := nsIndex(e.Key)
		if !ok {
			continue
		}
		ds := e.Deltas
		if before != 0 && !crdt.IsSet(crdt.NamespaceOf(e.Key)) && len(ds) > 0 && ds[len(ds)-1].Stamp.HLC > before {
			ds = nil
		}
		if len(ds) > 0 {
			d[ns][bucketOf(e.Key)] ^= deltasHash(e.Key, ds)
		}
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

// Stats describes one exchange.
type Stats struct {
	Buckets  int // buckets that differed
	Sent     int // deltas sent
	Received int // deltas received
	Repaired int // received deltas that changed local state
}

// frame types
const (
	frameDigest  = 1
	frameNeed    = 2
	frameEntries = 3
	frameDone    = 4
)

// digestFrame is the payload of a digest frame: the initiator's cutoff
// stamp, then the digest of its state as of that stamp.
type digestFrame struct {
	_      struct{} `cbor:",toarray"`
	Before uint64
	Digest Digest
}

// Initiate runs the initiator's side of one exchange over rw: both sides
// digest their state as of before (see DigestBefore; 0 compares
// everything), so that writes still in flight by gossip do not make every
// bucket differ. The buckets that do differ travel whole, recent records
// included. What a cutoff leaves out this time is compared by a later
// exchange with a later cutoff.
func Initiate(rw io.ReadWriter, st State, before crdt.HLC) (Stats, error) {
	var s Stats
	entries := st.Entries("")
	w := bufio.NewWriter(rw)
	if err := writeFrame(w, frameDigest, digestFrame{Before: uint64(before), Digest: DigestBefore(entries, before)}); err != nil {
		return s, err
	}
	if err := w.Flush(); err != nil {
		return s, fmt.Errorf("antientropy: send digest: %w", err)
	}
	r := bufio.NewReader(rw)
	var need []BucketID
	if err := readFrame(r, frameNeed, &need); err != nil {
		return s, err
	}
	s.Buckets = len(need)
	if err := receiveEntries(r, st, &s); err != nil {
		return s, err
	}
	// Send ours for the same buckets, from the state as it was when the
	// digest was taken; anything newer reaches the peer by gossip or the
	// next exchange.
	return s, sendEntries(w, entries, need, &s)
}

// Respond runs the responder's side of one exchange over rw.
func Respond(rw io.ReadWriter, st State) (Stats, error) {
	var s Stats
	r := bufio.NewReader(rw)
	var theirs digestFrame
	if err := readFrame(r, frameDigest, &theirs); err != nil {
		return s, err
	}
	if len(theirs.Digest) != len(crdt.Namespaces) {
		return s, fmt.Errorf("%w: digest has %d namespaces, want %d", ErrProtocol, len(theirs.Digest), len(crdt.Namespaces))
	}
	entries := st.Entries("")
	need := Diff(DigestBefore(entries, crdt.HLC(theirs.Before)), theirs.Digest)
	s.Buckets = len(need)
	w := bufio.NewWriter(rw)
	if err := writeFrame(w, frameNeed, need); err != nil {
		return s, err
	}
	if err := sendEntries(w, entries, need, &s); err != nil {
		return s, err
	}
	return s, receiveEntries(r, st, &s)
}

// sendEntries writes the signed deltas of entries in the given buckets as
// chunked entries frames, then done, and flushes. A delta without a proof
// (a local write whose batch is still being signed) is left for a later
// exchange.
func sendEntries(w *bufio.Writer, entries []crdt.Entry, buckets []BucketID, s *Stats) error {
	want := make(map[BucketID]bool, len(buckets))
	for _, b := range buckets {
		want[b] = true
	}
	var chunk []crdt.Delta
	certs := make(map[*crdt.Cert]bool)
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		b, err := wire.Encode(chunk)
		if err != nil {
			return err
		}
		s.Sent += len(chunk)
		chunk, size = chunk[:0], 0
		clear(certs)
		return writeRaw(w, frameEntries, b)
	}
	for _, e := range entries {
		ns, ok := nsIndex(e.Key)
		if !ok || !want[BucketID{NS: uint8(ns), Bucket: bucketOf(e.Key)}] {
			continue
		}
		for _, d := range e.Deltas {
			if !d.Proof.Signed() {
				continue
			}
			chunk = append(chunk, d)
			size += wire.Size(d)
			if c := d.Proof.Cert; !certs[c] {
				certs[c] = true
				size += len(c.Hashes) * (wire.HashSize + 4) // at most, if no other delta of it comes along
			}
			if size >= chunkBytes || len(chunk) >= wire.DefaultLimits.MaxDeltas {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := writeRaw(w, frameDone, nil); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("antientropy: send entries: %w", err)
	}
	return nil
}

// receiveEntries reads entries frames until done, merging each chunk.
func receiveEntries(r *bufio.Reader, st State, s *Stats) error {
	for {
		typ, payload, err := readRaw(r)
		if err != nil {
			return err
		}
		switch typ {
		case frameDone:
			return nil
		case frameEntries:
			ds, err := wire.Decode(payload, wire.Limits{})
			if err != nil {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			s.Received += len(ds)
			s.Repaired += st.Merge(ds)
		default:
			return fmt.Errorf("%w: unexpected frame %d", ErrProtocol, typ)
		}
	}
}

func writeFrame(w io.Writer, typ byte, v any) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return fmt.Errorf("antientropy: %w", err)
	}
	return writeRaw(w, typ, b)
}

func writeRaw(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("antientropy: frame of %d bytes exceeds %d", len(payload), MaxFrame)
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = typ
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := w.Write(hdr[:1+n]); err != nil {
		return fmt.Errorf("antientropy: write: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("antientropy: write: %w", err)
	}
	return nil
}

func readRaw(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, fmt.Errorf("antientropy: read: %w", err)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, fmt.Errorf("antientropy: read: %w", err)
	}
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrProtocol, n, MaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, fmt.Errorf("antientropy: read: %w", err)
	}
	return typ, b, nil
}

func readFrame(r *bufio.Reader, want byte, v any) error {
	typ, b, err := readRaw(r)
	if err != nil {
		return err
	}
	if typ != want {
		return fmt.Errorf("%w: got frame %d, want %d", ErrProtocol, typ, want)
	}
	if err := wire.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// frameKey opens a key exchange: the key, as a CBOR string.
const frameKey = 5

// KeyProtocol is the libp2p protocol of key exchanges in a cluster.
func KeyProtocol(cluster string) string { return "/rumor/" + cluster + "/key/1" }

// PushKey runs the asking side of a key exchange over rw: it sends its
// signed records of key; the peer merges them, then answers with its own
// records of key as they are after that merge, which PushKey merges. So
// when PushKey returns, the peer holds every record the asker held and the
// asker every record the peer held once it had the asker's: a peer that
// decides anything about key after answering decides knowing the asker's
// records (a kernel claim relies on it: see the agent's KernelClaim).
func PushKey(rw io.ReadWriter, st State, key string) (Stats, error) {
	var s Stats
	if _, ok := nsIndex(key); !ok {
		return s, fmt.Errorf("antientropy: key exchange of %q: not a rumor key", key)
	}
	w := bufio.NewWriter(rw)
	if err := writeFrame(w, frameKey, key); err != nil {
		return s, err
	}
	if err := sendKey(w, st, key, &s); err != nil {
		return s, err
	}
	return s, receiveKey(bufio.NewReader(rw), st, key, &s)
}

// AnswerKey runs the answering side of a key exchange over rw.
func AnswerKey(rw io.ReadWriter, st State) (Stats, error) {
	var s Stats
	r := bufio.NewReader(rw)
	var key string
	if err := readFrame(r, frameKey, &key); err != nil {
		return s, err
	}
	if _, ok := nsIndex(key); !ok {
		return s, fmt.Errorf("%w: key exchange of %q: not a rumor key", ErrProtocol, key)
	}
	if err := receiveKey(r, st, key, &s); err != nil {
		return s, err
	}
	return s, sendKey(bufio.NewWriter(rw), st, key, &s)
}

// sendKey sends st's signed records of key, then done.
func sendKey(w *bufio.Writer, st State, key string, s *Stats) error {
	var mine []crdt.Entry
	for _, e := range st.Entries(key) {
		if e.Key == key {
			mine = append(mine, e)
		}
	}
	ns, _ := nsIndex(key)
	return sendEntries(w, mine, []BucketID{{NS: uint8(ns), Bucket: bucketOf(key)}}, s)
}

// receiveKey receives records of key until done and merges them; a record
// of any other key is a protocol error, and none of its chunk is merged.
func receiveKey(r *bufio.Reader, st State, key string, s *Stats) error {
	only := &oneKey{State: st, key: key}
	if err := receiveEntries(r, only, s); err != nil {
		return err
	}
	if only.other != "" {
		return fmt.Errorf("%w: key exchange of %q carried a record of %q", ErrProtocol, key, only.other)
	}
	return nil
}

// oneKey is a State that merges records of one key only.
type oneKey struct {
	State
	key   string
	other string // a key of a record refused
}

func (o *oneKey) Merge(ds []crdt.Delta) int {
	for _, d := range ds {
		if d.Key != o.key {
			o.other = d.Key
			return 0
		}
	}
	return o.State.Merge(ds)
}
