package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/rumor-dev/rumor/crdt"
)

// Version 2 is written and read by hand rather than by reflection: it is
// on every message's path (encoded once by the publisher, decoded by every
// receiver's validator), and the generic decoder cost ~5 % of a busy
// agent's CPU. The reader accepts exactly the CBOR this writer produces:
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

func encode2(ds []crdt.Delta) ([]byte, error) {
	var nodes []string
	var index map[string]uint64 // past a few writers
	idx := make([]uint64, len(ds))
	size := 16
	for i, d := range ds {
		size += Size(d)
		n, ok := uint64(0), false
		if index == nil {
			if j := slices.Index(nodes, d.Stamp.Node); j >= 0 {
				n, ok = uint64(j), true
			}
		} else {
			n, ok = index[d.Stamp.Node]
		}
		if !ok {
			n = uint64(len(nodes))
			nodes = append(nodes, d.Stamp.Node)
			if index != nil {
				index[d.Stamp.Node] = n
			} else if len(nodes) > 8 {
				index = make(map[string]uint64, 2*len(nodes))
				for j, node := range nodes {
					index[node] = uint64(j)
				}
			}
		}
		idx[i] = n
	}
	b := make([]byte, 0, size)
	b = appendHead(b, majArray, 3)
	b = appendHead(b, majUint, Version)
	b = appendHead(b, majArray, uint64(len(nodes)))
	for _, node := range nodes {
		if !utf8.ValidString(node) {
			return nil, fmt.Errorf("wire: encode: node id %q is not UTF-8", node)
		}
		b = append(appendHead(b, majText, uint64(len(node))), node...)
	}
	b = appendHead(b, majArray, uint64(len(ds)))
	for i, d := range ds {
		if !utf8.ValidString(d.Key) {
			return nil, fmt.Errorf("wire: encode: key %q is not UTF-8", d.Key)
		}
		b = appendHead(b, majArray, 8)
		b = append(appendHead(b, majText, uint64(len(d.Key))), d.Key...)
		b = appendHead(b, majUint, uint64(d.Stamp.HLC))
		b = appendHead(b, majUint, idx[i])
		b = appendHead(b, majUint, uint64(d.Op))
		b = appendInt(b, d.Expiry)
		b = appendHead(b, majUint, d.Epoch)
		b = appendHead(b, majUint, uint64(d.Task))
		b = append(appendHead(b, majBytes, uint64(len(d.Value))), d.Value...)
	}
	return b, nil
}

// reader is a strict reader of the CBOR that encode2 writes. Its methods
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

func (r *reader) text(limit int, what string) (string, error) {
	p, err := r.raw(majText, limit, what)
	return string(p), err
}

func decode2(b []byte, lim Limits) ([]crdt.Delta, error) {
	r := &reader{b: b}
	if n, err := r.array(1); err != nil {
		return nil, err
	} else if n != 3 {
		return nil, r.fail("envelope of %d elements, want 3", n)
	}
	if v, err := r.uint(math.MaxUint64); err != nil {
		return nil, err
	} else if v != Version {
		return nil, r.fail("version %d", v)
	}
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
	nd, err := r.array(9) // the smallest delta is 9 bytes
	if err != nil {
		return nil, err
	}
	if nd > lim.MaxDeltas {
		return nil, fmt.Errorf("%w: %d deltas, limit %d", ErrLimit, nd, lim.MaxDeltas)
	}
	// Every node is used, so there are no more nodes than deltas.
	if nn > nd {
		return nil, fmt.Errorf("%w: %d nodes for %d deltas", ErrMalformed, nn, nd)
	}
	used := make([]bool, nn)
	out := make([]crdt.Delta, nd)
	for i := range out {
		d := &out[i]
		if n, err := r.array(1); err != nil {
			return nil, err
		} else if n != 8 {
			return nil, r.fail("delta of %d elements, want 8", n)
		}
		if d.Key, err = r.text(lim.MaxKeyBytes, "key"); err != nil {
			return nil, err
		}
		hlc, err := r.uint(math.MaxUint64)
		if err != nil {
			return nil, err
		}
		node, err := r.uint(math.MaxUint64)
		if err != nil {
			return nil, err
		}
		if node >= uint64(nn) {
			return nil, fmt.Errorf("%w: delta %d names node %d of %d", ErrMalformed, i, node, nn)
		}
		used[node] = true
		d.Stamp = crdt.Stamp{HLC: crdt.HLC(hlc), Node: nodes[node]}
		op, err := r.uint(math.MaxUint8)
		if err != nil {
			return nil, err
		}
		d.Op = crdt.Op(op)
		if d.Expiry, err = r.int(); err != nil {
			return nil, err
		}
		if d.Epoch, err = r.uint(math.MaxUint64); err != nil {
			return nil, err
		}
		task, err := r.uint(math.MaxUint8)
		if err != nil {
			return nil, err
		}
		d.Task = crdt.TaskState(task)
		v, err := r.raw(majBytes, lim.MaxValue, "value")
		if err != nil {
			return nil, err
		}
		if len(v) > 0 {
			d.Value = slices.Clone(v)
		}
	}
	if r.i != len(b) {
		return nil, r.fail("%d bytes after the envelope", len(b)-r.i)
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("%w: node %d is not used", ErrMalformed, i)
		}
	}
	return out, nil
}
