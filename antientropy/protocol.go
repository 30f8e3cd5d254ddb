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
	"io"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/wire"
)

// Protocol returns the libp2p protocol id of the exchange for a cluster,
// so agents of different clusters never merge each other's state. Version
// 4 adds the kv namespace to the digest; version 3 (no kv) and versions 1
// and 2 (unsigned deltas) are neither spoken nor served.
func Protocol(cluster string) string { return "/rumor/" + cluster + "/sync/4" }

// MaxFrame bounds one frame on the wire.
const MaxFrame = 4 << 20

// chunkBytes is the target size of one entries frame.
const chunkBytes = 256 << 10

// ErrProtocol is returned for a peer that breaks the protocol.
var ErrProtocol = errors.New("antientropy: protocol error")

// State is the local replica as a session sees it. Implementations are
// safe for concurrent use.
type State interface {
	// Digest returns the digest of the state with the registers whose
	// winner is stamped after before left out (digest.Before).
	Digest(before crdt.HLC) digest.Digest
	// Entries returns every entry whose key starts with prefix, in any
	// order.
	Entries(prefix string) []crdt.Entry
	// Merge takes deltas received from a peer through the agent's ingest
	// path (which verifies and judges them) and returns how many changed
	// the local state.
	Merge(ds []crdt.Delta) int
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
	Digest digest.Digest
}

// Initiate runs the initiator's side of one exchange over rw: both sides
// digest their state as of before (see digest.Before; 0 compares
// everything), so that writes still in flight by gossip do not make every
// bucket differ. The buckets that do differ travel whole, recent records
// included. What a cutoff leaves out this time is compared by a later
// exchange with a later cutoff. The state keeps its digest up to date as
// it changes, so an exchange that finds nothing different visits no entry.
func Initiate(rw io.ReadWriter, st State, before crdt.HLC) (Stats, error) {
	var s Stats
	w := bufio.NewWriter(rw)
	if err := writeFrame(w, frameDigest, digestFrame{Before: uint64(before), Digest: st.Digest(before)}); err != nil {
		return s, err
	}
	if err := w.Flush(); err != nil {
		return s, fmt.Errorf("antientropy: send digest: %w", err)
	}
	r := bufio.NewReader(rw)
	var need []digest.BucketID
	if err := readFrame(r, frameNeed, &need); err != nil {
		return s, err
	}
	s.Buckets = len(need)
	// Ours for the same buckets, from the state as it is before the
	// peer's arrive (not to send those back); anything newer reaches the
	// peer by gossip or the next exchange.
	var entries []crdt.Entry
	if len(need) > 0 {
		entries = st.Entries("")
	}
	if err := receiveEntries(r, st, &s); err != nil {
		return s, err
	}
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
	need := digest.Diff(st.Digest(crdt.HLC(theirs.Before)), theirs.Digest)
	s.Buckets = len(need)
	w := bufio.NewWriter(rw)
	if err := writeFrame(w, frameNeed, need); err != nil {
		return s, err
	}
	var entries []crdt.Entry
	if len(need) > 0 {
		entries = st.Entries("")
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
func sendEntries(w *bufio.Writer, entries []crdt.Entry, buckets []digest.BucketID, s *Stats) error {
	want := make(map[digest.BucketID]bool, len(buckets))
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
		ns, ok := digest.Namespace(e.Key)
		if !ok || !want[digest.BucketID{NS: uint8(ns), Bucket: digest.BucketOf(e.Key)}] {
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
	if _, ok := digest.Namespace(key); !ok {
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
	if _, ok := digest.Namespace(key); !ok {
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
	ns, _ := digest.Namespace(key)
	return sendEntries(w, mine, []digest.BucketID{{NS: uint8(ns), Bucket: digest.BucketOf(key)}}, s)
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
