package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

func sample() []crdt.Delta {
	return []crdt.Delta{
		{Key: "svc/web/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1700000000000, 3), Node: "12D3KooWA"}, Op: crdt.OpPut, Expiry: 1700000060000, Value: []byte(`{"status":"up"}`)},
		{Key: "kernel/k1", Stamp: crdt.Stamp{HLC: 42, Node: "n2"}, Op: crdt.OpClaim, Epoch: 7, Expiry: 99},
		{Key: "task/t", Stamp: crdt.Stamp{HLC: 1, Node: "n3"}, Op: crdt.OpPut, Task: crdt.TaskCancelRequested},
	}
}

func TestRoundTrip(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("decoded %d deltas, want 3", len(got))
	}
	for i, d := range sample() {
		if !got[i].Equal(d) {
			t.Errorf("delta %d: got %+v, want %+v", i, got[i], d)
		}
	}
	for _, d := range sample() {
		one, _ := Encode([]crdt.Delta{d})
		if Size(d) < len(one)-2 {
			t.Errorf("Size(%s) = %d underestimates %d", d.Key, Size(d), len(one))
		}
	}
}

func TestVersion1StillReads(t *testing.T) {
	b1, err := EncodeVersion(sample(), Version1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if b1[1] != Version1 || b2[1] != Version {
		t.Fatalf("versions written: % x, % x", b1[:2], b2[:2])
	}
	for _, b := range [][]byte{b1, b2} {
		got, err := Decode(b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range sample() {
			if !got[i].Equal(d) {
				t.Errorf("version %d, delta %d: got %+v, want %+v", b[1], i, got[i], d)
			}
		}
	}
	// A version in CBOR's longer integer form is still that version.
	long := append([]byte{b1[0], 0x18, Version1}, b1[2:]...)
	if _, err := Decode(long, Limits{}); err != nil {
		t.Errorf("version 1 in long form: %v", err)
	}
	if _, err := EncodeVersion(sample(), 3); !errors.Is(err, ErrVersion) {
		t.Errorf("EncodeVersion(3): err = %v, want ErrVersion", err)
	}
}

// TestVersion2WritesEachNodeOnce: one writer's batch names it once, so the
// envelope is smaller than version 1's by about the node id per delta.
func TestVersion2WritesEachNodeOnce(t *testing.T) {
	node := "12D3KooWQfGkPUkoLDEeJE3H3ZTmu9BZvAdbJpmhha8WpjeSLKMM"
	ds := make([]crdt.Delta, 100)
	for i := range ds {
		ds[i] = crdt.Delta{Key: "bl/x/" + strings.Repeat("k", i%7), Stamp: crdt.Stamp{HLC: crdt.HLC(1000 + i), Node: node}, Op: crdt.OpPut, Value: bytes.Repeat([]byte("v"), 200)}
	}
	b1, _ := EncodeVersion(ds, Version1)
	b2, _ := Encode(ds)
	if saved := len(b1) - len(b2); saved < 99*len(node) {
		t.Errorf("version 2 saves %d bytes on 100 deltas of one writer, want at least %d", saved, 99*len(node))
	}
	// Many writers (an anti-entropy chunk) round-trip too.
	for i := range ds {
		ds[i].Stamp.Node = fmt.Sprintf("n%d", i%23)
	}
	b, _ := Encode(ds)
	got, err := Decode(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		if !got[i].Equal(ds[i]) {
			t.Fatalf("delta %d: got %+v, want %+v", i, got[i], ds[i])
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	v3, _ := cbor.Marshal([]any{3, []any{}})
	d := []any{"bl/x/1", 1, 0, 1, 0, 0, 0, []byte("v")}
	d1 := []any{"bl/x/1", 1, 1, 1, 0, 0, 0, []byte("v")}
	nodeOutOfRange, _ := cbor.Marshal([]any{2, []string{"n"}, []any{d1}})
	unusedNode, _ := cbor.Marshal([]any{2, []string{"n", "m"}, []any{d, d}})
	dupNode, _ := cbor.Marshal([]any{2, []string{"n", "n"}, []any{d, d1}})
	manyNodes := make([]string, 20)
	manyDeltas := make([]any, 20)
	for i := range manyNodes {
		manyNodes[i] = fmt.Sprint("n", i)
		manyDeltas[i] = []any{"bl/x/1", 1, i, 1, 0, 0, 0, []byte("v")}
	}
	manyNodes[19] = "n3"
	dupNodeMany, _ := cbor.Marshal([]any{2, manyNodes, manyDeltas})
	moreNodesThanDeltas, _ := cbor.Marshal([]any{2, []string{"n"}, []any{}})
	longNode, _ := cbor.Marshal([]any{2, []string{strings.Repeat("n", 200)}, []any{d}})
	v2Shape1, _ := cbor.Marshal([]any{2, []any{[]any{"bl/x/1", 1, "n", 1, 0, 0, 0, []byte("v")}}})
	v1Shape2, _ := cbor.Marshal([]any{1, []string{"n"}, []any{d}})
	many := make([]crdt.Delta, 5)
	for i := range many {
		many[i] = sample()[0]
	}
	tooMany, _ := Encode(many)
	longKey, _ := Encode([]crdt.Delta{{Key: strings.Repeat("k", 600)}})
	bigVal, _ := Encode([]crdt.Delta{{Key: "bl/x/1", Value: bytes.Repeat([]byte("v"), 100)}})
	trailing, _ := Encode(sample())
	trailing = append(trailing, 0)
	for _, tc := range []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"empty", nil, Limits{}, ErrMalformed},
		{"garbage", []byte("\xff\x00garbage"), Limits{}, ErrMalformed},
		{"trailing bytes", trailing, Limits{}, ErrMalformed},
		{"unknown version", v3, Limits{}, ErrVersion},
		{"node index out of range", nodeOutOfRange, Limits{}, ErrMalformed},
		{"unused node", unusedNode, Limits{}, ErrMalformed},
		{"repeated node", dupNode, Limits{}, ErrMalformed},
		{"repeated node among many", dupNodeMany, Limits{}, ErrMalformed},
		{"more nodes than deltas", moreNodesThanDeltas, Limits{}, ErrMalformed},
		{"long node id", longNode, Limits{}, ErrLimit},
		{"version 2 in version 1's shape", v2Shape1, Limits{}, ErrMalformed},
		{"version 1 in version 2's shape", v1Shape2, Limits{}, ErrMalformed},
		{"too many deltas", tooMany, Limits{MaxDeltas: 4, MaxKeyBytes: 512, MaxValue: 1024, MaxNode: 64}, ErrLimit},
		{"long key", longKey, Limits{}, ErrLimit},
		{"big value", bigVal, Limits{MaxDeltas: 4, MaxKeyBytes: 512, MaxValue: 99, MaxNode: 64}, ErrLimit},
	} {
		if _, err := Decode(tc.in, tc.lim); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to something it decodes to the same deltas.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	b1, _ := EncodeVersion(sample(), Version1)
	f.Add(b1)
	empty, _ := Encode(nil)
	f.Add(empty)
	f.Add([]byte{0x82, 0x01, 0x80})
	f.Add([]byte{0x83, 0x02, 0x80, 0x80})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Decode(in, Limits{})
		if err != nil {
			return
		}
		if v, _ := peekVersion(in); v == Version {
			agreesWithGeneric(t, in, ds)
		}
		again, err := Encode(ds)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ds2, err := Decode(again, Limits{})
		if err != nil || len(ds2) != len(ds) {
			t.Fatalf("round trip: %v, %d vs %d", err, len(ds2), len(ds))
		}
		for i := range ds {
			if !ds[i].Equal(ds2[i]) {
				t.Fatalf("round trip changed delta %d", i)
			}
		}
	})
}

// generic2 mirrors version 2 for the reflection-based CBOR library, to
// check the hand-written codec against it.
type generic2 struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Nodes   []string
	Deltas  []generic2Delta
}

type generic2Delta struct {
	_      struct{} `cbor:",toarray"`
	Key    string
	HLC    uint64
	Node   uint64
	Op     uint8
	Expiry int64
	Epoch  uint64
	Task   uint8
	Value  []byte
}

// agreesWithGeneric checks that the library reads b (a version 2
// envelope) to the same deltas as ds.
func agreesWithGeneric(t *testing.T, b []byte, ds []crdt.Delta) {
	t.Helper()
	var g generic2
	if err := decMode.Unmarshal(b, &g); err != nil {
		t.Fatalf("the generic decoder refuses what Decode accepted: %v", err)
	}
	if g.Version != Version || len(g.Deltas) != len(ds) {
		t.Fatalf("generic decoder: version %d, %d deltas; want %d, %d", g.Version, len(g.Deltas), Version, len(ds))
	}
	for i, w := range g.Deltas {
		d := crdt.Delta{Key: w.Key, Stamp: crdt.Stamp{HLC: crdt.HLC(w.HLC), Node: g.Nodes[w.Node]}, Op: crdt.Op(w.Op),
			Expiry: w.Expiry, Epoch: w.Epoch, Task: crdt.TaskState(w.Task), Value: w.Value}
		if !d.Equal(ds[i]) {
			t.Fatalf("delta %d: generic decoder %+v, Decode %+v", i, d, ds[i])
		}
	}
}

// TestVersion2MatchesGenericCBOR: the hand-written encoder writes, byte for
// byte, what the CBOR library writes for the same envelope, and both
// decoders agree.
func TestVersion2MatchesGenericCBOR(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...uint64) uint64 { return vs[r.IntN(len(vs))] }
	edges := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxUint64}
	for round := range 200 {
		ds := make([]crdt.Delta, r.IntN(40))
		for i := range ds {
			ds[i] = crdt.Delta{
				Key:    fmt.Sprintf("bl/l/%d-é%s", r.IntN(1000), strings.Repeat("k", int(pick(0, 1, 30, 300)))),
				Stamp:  crdt.Stamp{HLC: crdt.HLC(pick(edges...)), Node: fmt.Sprintf("node-%d", r.IntN(1+round%12))},
				Op:     crdt.Op(pick(0, 1, 23, 24, 255)),
				Expiry: int64(pick(edges...)>>1) * int64(1-2*r.IntN(2)),
				Epoch:  pick(edges...),
				Task:   crdt.TaskState(pick(0, 3, 200)),
			}
			if n := int(pick(0, 1, 23, 24, 300, 70000)); n > 0 {
				ds[i].Value = bytes.Repeat([]byte{byte(i)}, n)
			}
		}
		b, err := Encode(ds)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b, Limits{MaxDeltas: 100, MaxKeyBytes: 512, MaxValue: 1 << 20, MaxNode: 64})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range ds {
			if !got[i].Equal(ds[i]) {
				t.Fatalf("round %d, delta %d: got %+v, want %+v", round, i, got[i], ds[i])
			}
		}
		agreesWithGeneric(t, b, got)
		// The library's own encoding of the same envelope is identical.
		g := generic2{Version: Version, Nodes: []string{}, Deltas: make([]generic2Delta, len(ds))}
		index := map[string]uint64{}
		for i, d := range ds {
			n, ok := index[d.Stamp.Node]
			if !ok {
				n = uint64(len(g.Nodes))
				index[d.Stamp.Node] = n
				g.Nodes = append(g.Nodes, d.Stamp.Node)
			}
			v := d.Value
			if v == nil {
				v = []byte{}
			}
			g.Deltas[i] = generic2Delta{Key: d.Key, HLC: uint64(d.Stamp.HLC), Node: n, Op: uint8(d.Op), Expiry: d.Expiry, Epoch: d.Epoch, Task: uint8(d.Task), Value: v}
		}
		want, err := cbor.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("round %d: Encode differs from the CBOR library's encoding", round)
		}
	}
}

// TestVersion2ReaderIsStrict: forms the writer never produces are refused.
func TestVersion2ReaderIsStrict(t *testing.T) {
	good, _ := Encode([]crdt.Delta{{Key: "bl/x/1", Stamp: crdt.Stamp{HLC: 5, Node: "n"}, Op: crdt.OpPut, Expiry: -3, Value: []byte("v")}})
	if _, err := Decode(good, Limits{}); err != nil {
		t.Fatal(err)
	}
	// good is 83 02 81 61 6e 81 88 66 "bl/x/1" 05 00 01 22 00 00 41 76.
	at := bytes.Index(good, []byte("bl/x/1")) + len("bl/x/1")
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, in := range map[string][]byte{
		"non-shortest integer": edit(func(b []byte) []byte { return slices.Concat(b[:at], []byte{0x18, 0x05}, b[at+1:]) }),
		"non-shortest length":  edit(func(b []byte) []byte { return slices.Concat(b[:2], []byte{0x98, 0x01}, b[3:]) }),
		"indefinite array":     edit(func(b []byte) []byte { b[0] = 0x9f; return append(b, 0xff) }),
		"tagged value":         edit(func(b []byte) []byte { return slices.Concat(b[:at], []byte{0xc1}, b[at:]) }),
		"null value":           edit(func(b []byte) []byte { return slices.Concat(b[:len(b)-2], []byte{0xf6}) }),
		"text value":           edit(func(b []byte) []byte { b[len(b)-2] = 0x61; return b }),
		"bytes key":            edit(func(b []byte) []byte { b[at-7] = 0x46; return b }),
		"invalid UTF-8 key":    edit(func(b []byte) []byte { b[at-1] = 0xff; return b }),
		"invalid UTF-8 node":   edit(func(b []byte) []byte { b[4] = 0xff; return b }),
		"op over 255":          edit(func(b []byte) []byte { return slices.Concat(b[:at+2], []byte{0x19, 0x01, 0x00}, b[at+3:]) }),
		"delta of 7 elements":  edit(func(b []byte) []byte { b[6] = 0x87; return b }),
		"trailing byte":        append(bytes.Clone(good), 0),
		"truncated":            good[:len(good)-1],
		"huge array claim":     {0x83, 0x02, 0x81, 0x61, 'n', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"huge string claim":    {0x83, 0x02, 0x81, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"reserved value":       edit(func(b []byte) []byte { b[at] = 0x1c; return b }),
	} {
		if _, err := Decode(in, Limits{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// BenchmarkDecode decodes a gossip-sized batch (150 deltas of a 200-byte
// value from one writer) in each version.
func BenchmarkDecode(b *testing.B) {
	ds := make([]crdt.Delta, 150)
	for i := range ds {
		ds[i] = crdt.Delta{Key: fmt.Sprintf("bl/bench/t%09d", i), Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1700000000000, uint16(i)), Node: "12D3KooWQfGkPUkoLDEeJE3H3ZTmu9BZvAdbJpmhha8WpjeSLKMM"}, Op: crdt.OpPut, Value: bytes.Repeat([]byte("r"), 200)}
	}
	for _, v := range []int{Version1, Version} {
		data, err := EncodeVersion(ds, v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(data, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("encode-v%d", v), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeVersion(ds, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
