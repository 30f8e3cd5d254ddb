package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/rumor-dev/rumor/crdt"
)

// The envelope is written and read by hand rather than by reflection: it
// is on every message's path (encoded once by the publisher, decoded by
// every receiver's validator), and the generic decoder cost ~5 % of a busy
// agent's CPU. The reader accepts exactly the CBOR the writer produces:
// definite lengths, integers in their shortest form, valid UTF-8 text, no
// tags, floats or nulls, and nothing after the envelope.

// CBOR major types.
const (
	majUint  = 0
	majNeg   = 1
	majBytes = 2
	majText  = 3
	majArray = 4
)

func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= math.MaxUint8:
		return append(b, m|24, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, majNeg, uint64(-(v + 1)))
	}
	return appendHead(b, majUint, uint64(v))
}

// table numbers distinct values in order of first appearance; a linear
// search while it is small, a map past a few entries.
type table[K comparable] struct {
	list  []K
	index map[K]uint64
}

func (t *table[K]) add(k K) uint64 {
	if t.index == nil {
		if j := slices.Index(t.list, k); j >= 0 {
			return uint64(j)
		}
	} else if j, ok := t.index[k]; ok {
		return j
	}
	n := uint64(len(t.list))
	t.list = append(t.list, k)
	if t.index != nil {
		t.index[k] = n
	} else if len(t.list) > 8 {
		t.index = make(map[K]uint64, 2*len(t.list))
		for j, x := range t.list {
			t.index[x] = uint64(j)
		}
	}
	return n
}

// Encode encodes signed deltas as one envelope. Every delta must carry a
// proof (ErrUnsigned otherwise), and no two deltas may fill the same
// position of one cert.
func Encode(ds []crdt.Delta) ([]byte, error) {
	var nodes table[string]
	var certs table[*crdt.Cert]
	type ref struct{ node, cert uint64 }
	refs := make([]ref, len(ds))
	size := 32
	for i, d := range ds {
		if d.Proof.Cert == nil {
			return nil, fmt.Errorf("wire: encode %q: %w", d.Key, ErrUnsigned)
		}
		if int(d.Proof.Pos) >= len(d.Proof.Cert.Hashes) || len(d.Proof.Cert.Hashes) > math.MaxUint16+1 {
			return nil, fmt.Errorf("wire: encode %q: position %d of a cert of %d", d.Key, d.Proof.Pos, len(d.Proof.Cert.Hashes))
		}
		if !utf8.ValidString(d.Key) || !utf8.ValidString(d.Stamp.Node) {
			return nil, fmt.Errorf("wire: encode %q: key or node id is not UTF-8", d.Key)
		}
		size += Size(d)
		refs[i] = ref{node: nodes.add(d.Stamp.Node), cert: certs.add(d.Proof.Cert)}
	}
	// Which positions of each cert the deltas fill, and each cert's writer.
	filled := make([][]bool, len(certs.list))
	certNode := make([]uint64, len(certs.list))
	for c, cert := range certs.list {
		filled[c] = make([]bool, len(cert.Hashes))
	}
	for i, d := range ds {
		c := refs[i].cert
		if filled[c][d.Proof.Pos] {
			return nil, fmt.Errorf("wire: encode %q: two deltas at position %d of one cert", d.Key, d.Proof.Pos)
		}
		filled[c][d.Proof.Pos] = true
		certNode[c] = refs[i].node
	}
	for _, cert := range certs.list {
		size += 80 + (HashSize+4)*(len(cert.Hashes))
	}

	b := make([]byte, 0, size)
	b = appendHead(b, majArray, 4)
	b = appendHead(b, majUint, Version)
	b = appendHead(b, majArray, uint64(len(nodes.list)))
	for _, node := range nodes.list {
		b = append(appendHead(b, majText, uint64(len(node))), node...)
	}
	b = appendHead(b, majArray, uint64(len(certs.list)))
	for c, cert := range certs.list {
		b = appendHead(b, majArray, 4)
		b = appendHead(b, majUint, certNode[c])
		b = append(appendHead(b, majBytes, SigSize), cert.Sig[:]...)
		b = appendHead(b, majUint, uint64(len(cert.Hashes)))
		absent := 0
		for _, f := range filled[c] {
			if !f {
				absent++
			}
		}
		b = appendHead(b, majArray, uint64(absent))
		for pos, f := range filled[c] {
			if !f {
				b = appendHead(b, majArray, 2)
				b = appendHead(b, majUint, uint64(pos))
				b = append(appendHead(b, majBytes, HashSize), cert.Hashes[pos][:]...)
			}
		}
	}
	b = appendHead(b, majArray, uint64(len(ds)))
	for i, d := range ds {
		b = appendHead(b, majArray, 10)
		b = append(appendHead(b, majText, uint64(len(d.Key))), d.Key...)
		b = appendHead(b, majUint, uint64(d.Stamp.HLC))
		b = appendHead(b, majUint, refs[i].node)
		b = appendHead(b, majUint, uint64(d.Op))
		b = appendInt(b, d.Expiry)
		b = appendHead(b, majUint, d.Epoch)
		b = appendHead(b, majUint, uint64(d.Task))
		b = append(appendHead(b, majBytes, uint64(len(d.Value))), d.Value...)
		b = appendHead(b, majUint, refs[i].cert)
		b = appendHead(b, majUint, uint64(d.Proof.Pos))
	}
	return b, nil
}

// reader is a strict reader of the CBOR that Encode writes. Its methods
// return ErrMalformed errors.
type reader struct {
	b []byte
	i int
}

func (r *reader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, r.i, fmt.Sprintf(format, args...))
}

// head reads an item's initial byte and argument.
func (r *reader) head() (major byte, v uint64, err error) {
	if r.i >= len(r.b) {
		return 0, 0, r.fail("unexpected end")
	}
	c := r.b[r.i]
	major, ai := c>>5, c&0x1f
	var n int
	switch {
	case ai < 24:
		r.i++
		return major, uint64(ai), nil
	case ai <= 27:
		n = 1 << (ai - 24)
	default:
		return 0, 0, r.fail("indefinite length or reserved value 0x%02x", c)
	}
	if len(r.b)-r.i-1 < n {
		return 0, 0, r.fail("unexpected end")
	}
	p := r.b[r.i+1 : r.i+1+n]
	switch n {
	case 1:
		v = uint64(p[0])
	case 2:
		v = uint64(binary.BigEndian.Uint16(p))
	case 4:
		v = uint64(binary.BigEndian.Uint32(p))
	default:
		v = binary.BigEndian.Uint64(p)
	}
	if v < 24 || (n > 1 && v>>(4*n) == 0) {
		return 0, 0, r.fail("integer %d not in its shortest form", v)
	}
	r.i += 1 + n
	return major, v, nil
}

func (r *reader) want(major byte) (uint64, error) {
	m, v, err := r.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		return 0, r.fail("major type %d, want %d", m, major)
	}
	return v, nil
}

// array reads an array header of n elements, each at least min bytes.
func (r *reader) array(min int) (int, error) {
	n, err := r.want(majArray)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)-r.i)/uint64(min) {
		return 0, r.fail("array of %d elements in %d bytes", n, len(r.b)-r.i)
	}
	return int(n), nil
}

// tuple reads an array header that must hold exactly n elements.
func (r *reader) tuple(n int, what string) error {
	got, err := r.array(1)
	if err == nil && got != n {
		err = r.fail("%s of %d elements, want %d", what, got, n)
	}
	return err
}

func (r *reader) uint(max uint64) (uint64, error) {
	v, err := r.want(majUint)
	if err == nil && v > max {
		err = r.fail("%d overflows %d", v, max)
	}
	return v, err
}

func (r *reader) int() (int64, error) {
	m, v, err := r.head()
	switch {
	case err != nil:
		return 0, err
	case m != majUint && m != majNeg:
		return 0, r.fail("major type %d, want an integer", m)
	case v > math.MaxInt64:
		return 0, r.fail("integer overflows int64")
	case m == majNeg:
		return -1 - int64(v), nil
	}
	return int64(v), nil
}

// raw reads a text or byte string's contents, of at most limit bytes (or
// ErrLimit, naming what).
func (r *reader) raw(major byte, limit int, what string) ([]byte, error) {
	n, err := r.want(major)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.i) {
		return nil, r.fail("string of %d bytes in %d", n, len(r.b)-r.i)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrLimit, what, n, limit)
	}
	p := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	if major == majText && !utf8.Valid(p) {
		return nil, r.fail("%s is not UTF-8", what)
	}
	return p, nil
}

// fixed reads a byte string of exactly n bytes.
func (r *reader) fixed(n int, what string) ([]byte, error) {
	p, err := r.raw(majBytes, n, what)
	if err == nil && len(p) != n {
		err = r.fail("%s of %d bytes, want %d", what, len(p), n)
	}
	return p, err
}

func (r *reader) text(limit int, what string) (string, error) {
	p, err := r.raw(majText, limit, what)
	return string(p), err
}

// certIn is a cert as read, before its hashes are complete.
type certIn struct {
	node   uint64
	cert   *crdt.Cert
	filled []bool
}

// Decode decodes an envelope, enforcing lim (zero value: DefaultLimits),
// and returns its deltas with their proofs, each cert's hash list complete
// (the hashes of the deltas it carries recomputed from them). It checks
// structure and sizes only: whether a signature is valid is package
// identity's question, and what a delta may do is the caller's policy.
func Decode(b []byte, lim Limits) ([]crdt.Delta, error) {
	lim = lim.orDefaults()
	r := &reader{b: b}
	n, err := r.array(1)
	if err != nil {
		return nil, err
	}
	v, err := r.uint(math.MaxUint64)
	if err != nil {
		return nil, err
	}
	if v != Version {
		return nil, fmt.Errorf("%w: %d (this build reads %d; versions 1 and 2 carried unsigned deltas)", ErrVersion, v, Version)
	}
	if n != 4 {
		return nil, r.fail("envelope of %d elements, want 4", n)
	}
	nodes, err := r.nodes(lim)
	if err != nil {
		return nil, err
	}
	certs, err := r.certs(lim, len(nodes))
	if err != nil {
		return nil, err
	}
	nd, err := r.array(12) // the smallest delta is 12 bytes
	if err != nil {
		return nil, err
	}
	if nd > lim.MaxDeltas {
		return nil, fmt.Errorf("%w: %d deltas, limit %d", ErrLimit, nd, lim.MaxDeltas)
	}
	// Every node and cert is used, so there are no more of them than deltas.
	if len(nodes) > nd || len(certs) > nd {
		return nil, fmt.Errorf("%w: %d nodes and %d certs for %d deltas", ErrMalformed, len(nodes), len(certs), nd)
	}
	nodeUsed := make([]bool, len(nodes))
	out := make([]crdt.Delta, nd)
	for i := range out {
		if err := r.delta(&out[i], lim, nodes, nodeUsed, certs); err != nil {
			return nil, fmt.Errorf("delta %d: %w", i, err)
		}
	}
	if r.i != len(b) {
		return nil, r.fail("%d bytes after the envelope", len(b)-r.i)
	}
	for i, u := range nodeUsed {
		if !u {
			return nil, fmt.Errorf("%w: node %d is not used", ErrMalformed, i)
		}
	}
	for c, ci := range certs {
		if i := slices.Index(ci.filled, false); i >= 0 {
			return nil, fmt.Errorf("%w: cert %d: position %d has neither a delta nor a hash", ErrMalformed, c, i)
		}
	}
	for i := range out {
		d := &out[i]
		d.Proof.Cert.Hashes[d.Proof.Pos] = Hash(*d)
	}
	return out, nil
}

func (r *reader) nodes(lim Limits) ([]string, error) {
	nn, err := r.array(1)
	if err != nil {
		return nil, err
	}
	if nn > lim.MaxDeltas { // every node is used by a delta
		return nil, fmt.Errorf("%w: %d nodes, more than the deltas allowed (%d)", ErrMalformed, nn, lim.MaxDeltas)
	}
	nodes := make([]string, nn)
	var seen map[string]bool // past a few nodes
	if nn > 8 {
		seen = make(map[string]bool, nn)
	}
	for i := range nodes {
		if nodes[i], err = r.text(lim.MaxNode, "node id"); err != nil {
			return nil, err
		}
		dup := seen[nodes[i]]
		if seen != nil {
			seen[nodes[i]] = true
		} else {
			dup = slices.Contains(nodes[:i], nodes[i])
		}
		if dup {
			return nil, fmt.Errorf("%w: node %d repeats an earlier one", ErrMalformed, i)
		}
	}
	return nodes, nil
}

func (r *reader) certs(lim Limits, nodes int) ([]certIn, error) {
	nc, err := r.array(1 + 2 + SigSize + 2) // the smallest cert
	if err != nil {
		return nil, err
	}
	if nc > lim.MaxDeltas { // every cert is used by a delta
		return nil, fmt.Errorf("%w: %d certs, more than the deltas allowed (%d)", ErrMalformed, nc, lim.MaxDeltas)
	}
	certs := make([]certIn, nc)
	for c := range certs {
		ci := &certs[c]
		if err := r.tuple(4, "cert"); err != nil {
			return nil, err
		}
		if nodes == 0 {
			return nil, fmt.Errorf("%w: cert %d but no node", ErrMalformed, c)
		}
		if ci.node, err = r.uint(uint64(nodes) - 1); err != nil {
			return nil, fmt.Errorf("cert %d: %w", c, err)
		}
		sig, err := r.fixed(SigSize, "signature")
		if err != nil {
			return nil, err
		}
		count, err := r.uint(uint64(min(lim.MaxCert, math.MaxUint16+1)))
		if err != nil {
			return nil, fmt.Errorf("%w: cert %d: %v", ErrLimit, c, err)
		}
		if count == 0 {
			return nil, fmt.Errorf("%w: cert %d covers no delta", ErrMalformed, c)
		}
		ci.cert = &crdt.Cert{Hashes: make([][HashSize]byte, count)}
		copy(ci.cert.Sig[:], sig)
		ci.filled = make([]bool, count)
		nh, err := r.array(1 + 1 + 2 + HashSize)
		if err != nil {
			return nil, err
		}
		last := -1
		for range nh {
			if err := r.tuple(2, "hash"); err != nil {
				return nil, err
			}
			pos, err := r.uint(count - 1)
			if err != nil {
				return nil, err
			}
			if int(pos) <= last {
				return nil, r.fail("cert %d: hash positions not ascending", c)
			}
			last = int(pos)
			h, err := r.fixed(HashSize, "hash")
			if err != nil {
				return nil, err
			}
			copy(ci.cert.Hashes[pos][:], h)
			ci.filled[pos] = true
		}
	}
	return certs, nil
}

func (r *reader) delta(d *crdt.Delta, lim Limits, nodes []string, nodeUsed []bool, certs []certIn) error {
	err := r.tuple(10, "delta")
	if err != nil {
		return err
	}
	if d.Key, err = r.text(lim.MaxKeyBytes, "key"); err != nil {
		return err
	}
	hlc, err := r.uint(math.MaxUint64)
	if err != nil {
		return err
	}
	node, err := r.uint(math.MaxUint64)
	if err != nil {
		return err
	}
	if node >= uint64(len(nodes)) {
		return fmt.Errorf("%w: names node %d of %d", ErrMalformed, node, len(nodes))
	}
	nodeUsed[node] = true
	d.Stamp = crdt.Stamp{HLC: crdt.HLC(hlc), Node: nodes[node]}
	op, err := r.uint(math.MaxUint8)
	if err != nil {
		return err
	}
	d.Op = crdt.Op(op)
	if d.Expiry, err = r.int(); err != nil {
		return err
	}
	if d.Epoch, err = r.uint(math.MaxUint64); err != nil {
		return err
	}
	task, err := r.uint(math.MaxUint8)
	if err != nil {
		return err
	}
	d.Task = crdt.TaskState(task)
	v, err := r.raw(majBytes, lim.MaxValue, "value")
	if err != nil {
		return err
	}
	if len(v) > 0 {
		d.Value = slices.Clone(v)
	}
	c, err := r.uint(math.MaxUint64)
	if err != nil {
		return err
	}
	if c >= uint64(len(certs)) {
		return fmt.Errorf("%w: names cert %d of %d", ErrMalformed, c, len(certs))
	}
	ci := &certs[c]
	if ci.node != node {
		return fmt.Errorf("%w: its writer is not its cert's", ErrMalformed)
	}
	pos, err := r.uint(uint64(len(ci.filled)) - 1)
	if err != nil {
		return err
	}
	if ci.filled[pos] {
		return fmt.Errorf("%w: cert %d position %d filled twice", ErrMalformed, c, pos)
	}
	ci.filled[pos] = true
	d.Proof = crdt.Proof{Cert: ci.cert, Pos: uint16(pos)}
	return nil
}
