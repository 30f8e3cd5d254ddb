package store

import (
	"hash/maphash"
	"math"
	"strings"
	"unsafe"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
)

// index is the store's map from key to entry, kept compact because an agent
// holds hundreds of thousands of keys and nearly all of them are registers:
// one winning delta each.
//
// A register entry whose winner fits (see fits) is kept packed: the key and
// the value bytes in one allocation, the other fields inline, and the
// writer's node id as a number into a shared table of node ids (a cluster
// has few writers, and each decoded delta carries its own copy of a
// ~50-byte id). Packed entries live in fixed-size chunks, found through an
// open-addressing table of 4-byte slots. Everything else (kernel lease
// sets, and any register whose winner the packed form cannot hold exactly)
// stays a crdt.Entry in sets. A key is in one of the two, never both.
//
// Reads rebuild crdt.Entry values that share the packed bytes. Those bytes
// are never modified after they are written (a new winner gets a new
// allocation), so entries handed out stay valid and unchanged, as with a
// plain map of entries. The value bytes are copied from the applied delta,
// so the store never keeps a caller's slice.
//
// Not safe for concurrent use; the store's lock guards it.
type index struct {
	seed   maphash.Seed
	slots  []uint32 // 0: empty; else a packed entry number plus 1. len is a power of 2.
	chunks []*[chunkLen]packed
	n      int // packed entries in use: numbers 0..n-1
	sets   map[string]crdt.Entry
	nodes  nodeTable
	// sum is the digest of every entry, kept as each changes (see Digest).
	sum digest.Tracker
}

const (
	chunkBits = 8
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
	minSlots  = 8
)

// packed is a register entry with one winner, stored compactly. Its
// proof's cert is shared with the other deltas of the writer's batch.
type packed struct {
	p      *byte // key bytes, then value bytes
	cert   *crdt.Cert
	klen   uint32
	vlen   uint32
	hlc    crdt.HLC
	expiry int64
	node   uint32 // in index.nodes
	pos    uint16 // the proof's position
	op     crdt.Op
	task   crdt.TaskState
	nilVal bool // the value was nil rather than empty (vlen 0)
}

func (r *packed) key() string { return unsafe.String(r.p, r.klen) }

func (r *packed) value() []byte {
	if r.vlen == 0 {
		if r.nilVal {
			return nil
		}
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r.p), r.klen)), r.vlen) // cap is len
}

// newIndex returns an empty index with room for about hint keys.
func newIndex(hint int) *index {
	n := minSlots
	for n*3 < hint*4+4 {
		n *= 2
	}
	return &index{
		seed: maphash.MakeSeed(), slots: make([]uint32, n), sets: make(map[string]crdt.Entry),
		nodes: nodeTable{ids: make(map[string]uint32), names: []string{""}, refs: []uint32{0}},
	}
}

// Len returns the number of keys.
func (x *index) Len() int { return x.n + len(x.sets) }

func (x *index) at(i uint32) *packed { return &x.chunks[i>>chunkBits][i&chunkMask] }

// find returns the slot holding key, or the empty slot where key would go.
func (x *index) find(key string) (pos int, ok bool) {
	mask := len(x.slots) - 1
	pos = int(maphash.String(x.seed, key)) & mask
	for {
		v := x.slots[pos]
		if v == 0 {
			return pos, false
		}
		if x.at(v-1).key() == key {
			return pos, true
		}
		pos = (pos + 1) & mask
	}
}

// fits reports whether a packed entry holds d exactly as the winner of key.
func fits(key string, d crdt.Delta) bool {
	return d.Key == key && d.Epoch == 0 && !crdt.IsSet(crdt.NamespaceOf(key)) &&
		uint64(len(key)) <= math.MaxUint32 && uint64(len(d.Value)) <= math.MaxUint32
}

// delta rebuilds the delta r holds.
func (x *index) delta(r *packed) crdt.Delta {
	return crdt.Delta{
		Key: r.key(), Stamp: crdt.Stamp{HLC: r.hlc, Node: x.nodes.names[r.node]},
		Op: r.op, Expiry: r.expiry, Task: r.task, Value: r.value(),
		Proof: crdt.Proof{Cert: r.cert, Pos: r.pos},
	}
}

// pack stores d (which fits) in a new packed entry, taking a reference to its node.
func (x *index) pack(d crdt.Delta) packed {
	b := make([]byte, len(d.Key)+len(d.Value))
	copy(b, d.Key)
	copy(b[len(d.Key):], d.Value)
	return packed{
		p: unsafe.SliceData(b), klen: uint32(len(d.Key)), vlen: uint32(len(d.Value)),
		hlc: d.Stamp.HLC, expiry: d.Expiry, node: x.nodes.intern(d.Stamp.Node),
		op: d.Op, task: d.Task, nilVal: d.Value == nil,
		cert: d.Proof.Cert, pos: d.Proof.Pos,
	}
}

// Get returns the entry for key.
func (x *index) Get(key string) (crdt.Entry, bool) {
	if pos, ok := x.find(key); ok {
		r := x.at(x.slots[pos] - 1)
		return crdt.Entry{Key: r.key(), Deltas: []crdt.Delta{x.delta(r)}}, true
	}
	e, ok := x.sets[key]
	return e, ok
}

// inSets reports whether key's entry is kept as a crdt.Entry.
func (x *index) inSets(key string) bool {
	if len(x.sets) == 0 {
		return false
	}
	_, ok := x.sets[key]
	return ok
}

// Put makes e the entry for key (e must not be empty).
func (x *index) Put(key string, e crdt.Entry) {
	if len(e.Deltas) == 1 && fits(key, e.Deltas[0]) {
		x.putWinner(e.Deltas[0])
		return
	}
	if pos, ok := x.find(key); ok {
		x.removeAt(pos)
	}
	if old, ok := x.sets[key]; ok {
		x.sum.Toggle(key, old.Deltas)
	}
	x.sets[key] = e
	x.sum.Toggle(key, e.Deltas)
}

// putWinner makes the register write d (which fits) the entry for d.Key.
func (x *index) putWinner(d crdt.Delta) {
	pos, ok := x.find(d.Key)
	if ok {
		x.replaceAt(pos, d)
		return
	}
	if old, ok := x.sets[d.Key]; ok {
		x.sum.Toggle(d.Key, old.Deltas)
		delete(x.sets, d.Key)
	}
	x.insertAt(pos, d)
}

// replaceAt makes d the winner of the packed entry in slot pos.
func (x *index) replaceAt(pos int, d crdt.Delta) {
	r := x.at(x.slots[pos] - 1)
	x.toggle(x.delta(r))
	old := r.node
	*r = x.pack(d) // interns d's node before releasing the old one
	x.nodes.release(old)
	x.toggle(d)
}

// toggle folds the register winner d in or out of x.sum.
func (x *index) toggle(d crdt.Delta) {
	one := [1]crdt.Delta{d}
	x.sum.Toggle(d.Key, one[:])
}

// insertAt adds a packed entry for d, a key not in the index, at the empty
// slot pos that find returned for it.
func (x *index) insertAt(pos int, d crdt.Delta) {
	i := x.n
	if i>>chunkBits == len(x.chunks) {
		x.chunks = append(x.chunks, new([chunkLen]packed))
	}
	*x.at(uint32(i)) = x.pack(d)
	x.toggle(d)
	x.n++
	x.slots[pos] = uint32(i) + 1
	if x.n*4 > len(x.slots)*3 {
		x.grow()
	}
}

// grow doubles the slot table.
func (x *index) grow() {
	x.slots = make([]uint32, 2*len(x.slots))
	mask := len(x.slots) - 1
	for i := range x.n {
		pos := int(maphash.String(x.seed, x.at(uint32(i)).key())) & mask
		for x.slots[pos] != 0 {
			pos = (pos + 1) & mask
		}
		x.slots[pos] = uint32(i) + 1
	}
}

// Delete removes key.
func (x *index) Delete(key string) {
	if pos, ok := x.find(key); ok {
		x.removeAt(pos)
		return
	}
	if old, ok := x.sets[key]; ok {
		x.sum.Toggle(key, old.Deltas)
		delete(x.sets, key)
	}
}

// removeAt removes the packed entry in slot pos. The last packed entry moves
// into its place, so packed entries stay dense.
func (x *index) removeAt(pos int) {
	i := x.slots[pos] - 1
	r := x.at(i)
	x.toggle(x.delta(r))
	x.nodes.release(r.node)
	x.clearSlot(pos)
	last := uint32(x.n - 1)
	if i != last {
		lr := x.at(last)
		lpos, _ := x.find(lr.key())
		*r = *lr
		x.slots[lpos] = i + 1
	}
	*x.at(last) = packed{}
	x.n--
	if x.n&chunkMask == 0 {
		c := x.n >> chunkBits
		x.chunks[c] = nil
		x.chunks = x.chunks[:c]
	}
}

// clearSlot empties slot pos and shifts later slots of its probe run back,
// so that find never stops early at the hole (linear probing deletion).
func (x *index) clearSlot(pos int) {
	mask := len(x.slots) - 1
	j := pos
	for {
		x.slots[pos] = 0
		for {
			j = (j + 1) & mask
			v := x.slots[j]
			if v == 0 {
				return
			}
			home := int(maphash.String(x.seed, x.at(v-1).key())) & mask
			// The entry at j may move to pos unless its home lies
			// cyclically in (pos, j].
			if pos <= j {
				if pos < home && home <= j {
					continue
				}
			} else if pos < home || home <= j {
				continue
			}
			x.slots[pos] = v
			pos = j
			break
		}
	}
}

// nodeTable interns writer node ids, counting the packed entries that use each so
// that ids of writers gone from the state are forgotten. Id 0 is "".
type nodeTable struct {
	ids   map[string]uint32
	names []string
	refs  []uint32
	free  []uint32
}

func (t *nodeTable) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	id, ok := t.ids[s]
	if !ok {
		s = strings.Clone(s) // do not keep the buffer s came in
		if n := len(t.free); n > 0 {
			id, t.free = t.free[n-1], t.free[:n-1]
			t.names[id] = s
		} else {
			id = uint32(len(t.names))
			t.names = append(t.names, s)
			t.refs = append(t.refs, 0)
		}
		t.ids[s] = id
	}
	t.refs[id]++
	return id
}

func (t *nodeTable) release(id uint32) {
	if id == 0 {
		return
	}
	if t.refs[id]--; t.refs[id] == 0 {
		delete(t.ids, t.names[id])
		t.names[id] = ""
		t.free = append(t.free, id)
	}
}

// List returns the entries whose key starts with prefix, in no order. The
// register entries share one backing array of deltas, each capped at its
// own delta.
func (x *index) List(prefix string) []crdt.Entry {
	var match []uint32
	for i := range x.n {
		if strings.HasPrefix(x.at(uint32(i)).key(), prefix) {
			match = append(match, uint32(i))
		}
	}
	out := make([]crdt.Entry, 0, len(match))
	ds := make([]crdt.Delta, len(match))
	for j, i := range match {
		r := x.at(i)
		ds[j] = x.delta(r)
		out = append(out, crdt.Entry{Key: ds[j].Key, Deltas: ds[j : j+1 : j+1]})
	}
	for k, e := range x.sets {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// scan visits every entry, for x.sum's full scans: a register's winner in
// a slice that is reused from one entry to the next.
func (x *index) scan(visit func(key string, ds []crdt.Delta)) {
	var one [1]crdt.Delta
	for i := range x.n {
		one[0] = x.delta(x.at(uint32(i)))
		visit(one[0].Key, one[:])
	}
	for k, e := range x.sets {
		visit(k, e.Deltas)
	}
}
