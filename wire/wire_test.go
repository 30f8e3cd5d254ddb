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

// certify gives ds one cert in batch order, as a writer's signer would;
// the signature is a made-up value (wire does not check it).
func certify(ds []crdt.Delta, sigByte byte) []crdt.Delta {
	out := slices.Clone(ds)
	c := &crdt.Cert{Hashes: make([][HashSize]byte, len(out))}
	for i := range c.Sig {
		c.Sig[i] = sigByte
	}
	for i, d := range out {
		c.Hashes[i] = Hash(d)
		out[i].Proof = crdt.Proof{Cert: c, Pos: uint16(i)}
	}
	return out
}

func sample() []crdt.Delta {
	a := certify([]crdt.Delta{
		{Key: "svc/web/1", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1700000000000, 3), Node: "12D3KooWA"}, Op: crdt.OpPut, Expiry: 1700000060000, Value: []byte(`{"status":"up"}`)},
		{Key: "svc/web/2", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1700000000000, 4), Node: "12D3KooWA"}, Op: crdt.OpDelete},
	}, 1)
	b := certify([]crdt.Delta{
		{Key: "kernel/k1", Stamp: crdt.Stamp{HLC: 42, Node: "n2"}, Op: crdt.OpClaim, Epoch: 7, Expiry: 99},
		{Key: "task/t", Stamp: crdt.Stamp{HLC: 43, Node: "n2"}, Op: crdt.OpPut, Task: crdt.TaskCancelRequested},
		{Key: "task/u", Stamp: crdt.Stamp{HLC: 44, Node: "n2"}, Op: crdt.OpPut, Task: crdt.TaskQueued, Expiry: -3},
	}, 2)
	// Only some deltas of b's cert travel, as in an anti-entropy chunk.
	return []crdt.Delta{a[0], b[2], a[1], b[0]}
}

// sameDeltas fails unless got holds want's deltas with equivalent proofs.
func sameDeltas(t *testing.T, got, want []crdt.Delta) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d deltas, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Equal(w) {
			t.Fatalf("delta %d: got %+v, want %+v", i, g, w)
		}
		if g.Proof.Pos != w.Proof.Pos || g.Proof.Cert.Sig != w.Proof.Cert.Sig || !slices.Equal(g.Proof.Cert.Hashes, w.Proof.Cert.Hashes) {
			t.Fatalf("delta %d: proof differs", i)
		}
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
	sameDeltas(t, got, sample())
	if got[0].Proof.Cert != got[2].Proof.Cert || got[1].Proof.Cert != got[3].Proof.Cert {
		t.Error("deltas of one cert do not share the decoded cert")
	}
	for _, d := range sample() {
		one, _ := Encode([]crdt.Delta{d})
		if Size(d) < len(one)-2-(HashSize+4)*(len(d.Proof.Cert.Hashes)-1) {
			t.Errorf("Size(%s) = %d underestimates %d", d.Key, Size(d), len(one))
		}
	}
}

// A batch that carries its whole cert sends no hash: one signature is the
// whole cost of signing, however many deltas it holds.
func TestWholeBatchSendsNoHashes(t *testing.T) {
	node := "12D3KooWQfGkPUkoLDEeJE3H3ZTmu9BZvAdbJpmhha8WpjeSLKMM"
	ds := make([]crdt.Delta, 100)
	for i := range ds {
		ds[i] = crdt.Delta{Key: fmt.Sprintf("bl/x/%d", i), Stamp: crdt.Stamp{HLC: crdt.HLC(1000 + i), Node: node}, Op: crdt.OpPut, Value: bytes.Repeat([]byte("v"), 200)}
	}
	ds = certify(ds, 7)
	b, err := Encode(ds)
	if err != nil {
		t.Fatal(err)
	}
	payload := 0
	for _, d := range ds {
		payload += len(d.Key) + len(d.Value) + 8
	}
	if over := len(b) - payload; over > 64+len(node)+100*20 {
		t.Errorf("envelope of 100 deltas is %d bytes over their payload, want at most a signature, the node and ~20 B a delta", over)
	}
	if bytes.Contains(b, ds[0].Proof.Cert.Hashes[0][:]) {
		t.Error("a hash of a delta in the envelope was sent")
	}
	// Half of them: the other half's hashes travel.
	half := ds[:50]
	b2, _ := Encode(half)
	got, err := Decode(b2, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sameDeltas(t, got, half)
}

func TestEncodeRefuses(t *testing.T) {
	s := sample()
	unsigned := s[0]
	unsigned.Proof = crdt.Proof{}
	if _, err := Encode([]crdt.Delta{unsigned}); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: err = %v, want ErrUnsigned", err)
	}
	if _, err := Encode([]crdt.Delta{s[0], s[0]}); err == nil {
		t.Error("a cert position twice: no error")
	}
	bad := s[0]
	bad.Proof.Pos = 9
	if _, err := Encode([]crdt.Delta{bad}); err == nil {
		t.Error("position past the cert: no error")
	}
}

// raw builds an envelope by hand for the decoder's refusals.
func raw(t *testing.T, v ...any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	sig := bytes.Repeat([]byte{1}, 64)
	h := bytes.Repeat([]byte{2}, 32)
	delta := func(node, cert, pos int) []any { return []any{"bl/x/1", 1, node, 1, 0, 0, 0, []byte("v"), cert, pos} }
	cert := func(node, count int, hashes ...[]any) []any {
		if hashes == nil {
			hashes = [][]any{}
		}
		return []any{node, sig, count, hashes}
	}
	ok := raw(t, 3, []string{"n"}, []any{cert(0, 1)}, []any{delta(0, 0, 0)})
	if _, err := Decode(ok, Limits{}); err != nil {
		t.Fatalf("hand-made envelope: %v", err)
	}
	many := make([]crdt.Delta, 5)
	for i := range many {
		many[i] = crdt.Delta{Key: fmt.Sprintf("bl/x/%d", i), Stamp: crdt.Stamp{HLC: 1, Node: "n"}, Op: crdt.OpPut}
	}
	tooMany, _ := Encode(certify(many, 1))
	longKey, _ := Encode(certify([]crdt.Delta{{Key: strings.Repeat("k", 600), Stamp: crdt.Stamp{Node: "n"}}}, 1))
	bigVal, _ := Encode(certify([]crdt.Delta{{Key: "bl/x/1", Stamp: crdt.Stamp{Node: "n"}, Value: bytes.Repeat([]byte("v"), 100)}}, 1))
	trailing := append(bytes.Clone(ok), 0)
	for _, tc := range []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"empty", nil, Limits{}, ErrMalformed},
		{"garbage", []byte("\xff\x00garbage"), Limits{}, ErrMalformed},
		{"trailing bytes", trailing, Limits{}, ErrMalformed},
		{"version 1 (unsigned)", raw(t, 1, []any{[]any{"bl/x/1", 1, "n", 1, 0, 0, 0, []byte("v")}}), Limits{}, ErrVersion},
		{"version 2 (unsigned)", raw(t, 2, []string{"n"}, []any{[]any{"bl/x/1", 1, 0, 1, 0, 0, 0, []byte("v")}}), Limits{}, ErrVersion},
		{"version 4", raw(t, 4, []string{}, []any{}, []any{}), Limits{}, ErrVersion},
		{"three elements", raw(t, 3, []string{"n"}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"node index out of range", raw(t, 3, []string{"n"}, []any{cert(0, 1)}, []any{delta(1, 0, 0)}), Limits{}, ErrMalformed},
		{"unused node", raw(t, 3, []string{"n", "m"}, []any{cert(0, 2)}, []any{delta(0, 0, 0), delta(0, 0, 1)}), Limits{}, ErrMalformed},
		{"repeated node", raw(t, 3, []string{"n", "n"}, []any{cert(0, 1), cert(1, 1)}, []any{delta(0, 0, 0), delta(1, 1, 0)}), Limits{}, ErrMalformed},
		{"long node id", raw(t, 3, []string{strings.Repeat("n", 200)}, []any{cert(0, 1)}, []any{delta(0, 0, 0)}), Limits{}, ErrLimit},
		{"cert index out of range", raw(t, 3, []string{"n"}, []any{cert(0, 1)}, []any{delta(0, 1, 0)}), Limits{}, ErrMalformed},
		{"unused cert", raw(t, 3, []string{"n"}, []any{cert(0, 1), cert(0, 1)}, []any{delta(0, 0, 0), delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"position filled twice", raw(t, 3, []string{"n"}, []any{cert(0, 2)}, []any{delta(0, 0, 0), delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"position by delta and hash", raw(t, 3, []string{"n"}, []any{cert(0, 1, []any{0, h})}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"position left empty", raw(t, 3, []string{"n"}, []any{cert(0, 2)}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"position past the cert", raw(t, 3, []string{"n"}, []any{cert(0, 1)}, []any{delta(0, 0, 1)}), Limits{}, ErrMalformed},
		{"hash positions not ascending", raw(t, 3, []string{"n"}, []any{cert(0, 3, []any{2, h}, []any{1, h})}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"cert of no delta", raw(t, 3, []string{"n"}, []any{cert(0, 0)}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"cert over MaxCert", raw(t, 3, []string{"n"}, []any{cert(0, 5000)}, []any{delta(0, 0, 0)}), Limits{}, ErrLimit},
		{"short signature", raw(t, 3, []string{"n"}, []any{[]any{0, sig[:63], 1, []any{}}}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"short hash", raw(t, 3, []string{"n"}, []any{cert(0, 2, []any{1, h[:31]})}, []any{delta(0, 0, 0)}), Limits{}, ErrMalformed},
		{"writer is not the cert's", raw(t, 3, []string{"n", "m"}, []any{cert(0, 2)}, []any{delta(0, 0, 0), delta(1, 0, 1)}), Limits{}, ErrMalformed},
		{"too many deltas", tooMany, Limits{MaxDeltas: 4}, ErrLimit},
		{"long key", longKey, Limits{}, ErrLimit},
		{"big value", bigVal, Limits{MaxValue: 99}, ErrLimit},
	} {
		if _, err := Decode(tc.in, tc.lim); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzDecode checks that Decode never panics, that what it accepts the
// generic CBOR library reads alike, and that it re-encodes to something
// it decodes to the same deltas and proofs.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	f.Add([]byte{0x84, 0x03, 0x80, 0x80, 0x80})
	f.Add([]byte{0x83, 0x02, 0x80, 0x80})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Decode(in, Limits{})
		if err != nil {
			return
		}
		agreesWithGeneric(t, in, ds)
		again, err := Encode(ds)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ds2, err := Decode(again, Limits{})
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		sameDeltas(t, ds2, ds)
	})
}

// generic mirrors the envelope for the reflection-based CBOR library, to
// check the hand-written codec against it.
type generic struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Nodes   []string
	Certs   []genericCert
	Deltas  []genericDelta
}

type genericCert struct {
	_      struct{} `cbor:",toarray"`
	Node   uint64
	Sig    []byte
	Count  uint64
	Hashes []genericHash
}

type genericHash struct {
	_    struct{} `cbor:",toarray"`
	Pos  uint64
	Hash []byte
}

type genericDelta struct {
	_      struct{} `cbor:",toarray"`
	Key    string
	HLC    uint64
	Node   uint64
	Op     uint8
	Expiry int64
	Epoch  uint64
	Task   uint8
	Value  []byte
	Cert   uint64
	Pos    uint64
}

// agreesWithGeneric checks that the library reads b to the same deltas as ds.
func agreesWithGeneric(t *testing.T, b []byte, ds []crdt.Delta) {
	t.Helper()
	var g generic
	if err := Unmarshal(b, &g); err != nil {
		t.Fatalf("the generic decoder refuses what Decode accepted: %v", err)
	}
	if g.Version != Version || len(g.Deltas) != len(ds) {
		t.Fatalf("generic decoder: version %d, %d deltas; want %d, %d", g.Version, len(g.Deltas), Version, len(ds))
	}
	for i, w := range g.Deltas {
		d := crdt.Delta{Key: w.Key, Stamp: crdt.Stamp{HLC: crdt.HLC(w.HLC), Node: g.Nodes[w.Node]}, Op: crdt.Op(w.Op),
			Expiry: w.Expiry, Epoch: w.Epoch, Task: crdt.TaskState(w.Task), Value: w.Value}
		if !d.Equal(ds[i]) || !bytes.Equal(g.Certs[w.Cert].Sig, ds[i].Proof.Cert.Sig[:]) || w.Pos != uint64(ds[i].Proof.Pos) {
			t.Fatalf("delta %d: generic decoder %+v, Decode %+v", i, d, ds[i])
		}
	}
}

// randomSigned returns random deltas from a few writers, each writer's in
// certs of its own, some certs partly present.
func randomSigned(r *rand.Rand, round int) []crdt.Delta {
	pick := func(vs ...uint64) uint64 { return vs[r.IntN(len(vs))] }
	edges := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxUint64}
	var out []crdt.Delta
	for c := range r.IntN(6) {
		node := fmt.Sprintf("node-%d", r.IntN(1+round%5))
		ds := make([]crdt.Delta, 1+r.IntN(20))
		for i := range ds {
			ds[i] = crdt.Delta{
				Key:    fmt.Sprintf("bl/l/%d-é%s", r.IntN(1000), strings.Repeat("k", int(pick(0, 1, 30, 300)))),
				Stamp:  crdt.Stamp{HLC: crdt.HLC(pick(edges...)), Node: node},
				Op:     crdt.Op(pick(0, 1, 23, 24, 255)),
				Expiry: int64(pick(edges...)>>1) * int64(1-2*r.IntN(2)),
				Epoch:  pick(edges...),
				Task:   crdt.TaskState(pick(0, 3, 200)),
			}
			if n := int(pick(0, 1, 23, 24, 300, 70000)); n > 0 {
				ds[i].Value = bytes.Repeat([]byte{byte(i)}, n)
			}
		}
		ds = certify(ds, byte(c))
		for _, d := range ds {
			if r.IntN(3) > 0 {
				out = append(out, d)
			}
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestMatchesGenericCBOR: the hand-written encoder writes, byte for byte,
// what the CBOR library writes for the same envelope, and both decoders
// agree.
func TestMatchesGenericCBOR(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		ds := randomSigned(r, round)
		b, err := Encode(ds)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b, Limits{MaxDeltas: 200, MaxValue: 1 << 20})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		sameDeltas(t, got, ds)
		agreesWithGeneric(t, b, got)
		var g generic
		if err := Unmarshal(b, &g); err != nil {
			t.Fatal(err)
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

// TestCanonicalMatchesGenericCBOR: the bytes a hash covers are the CBOR
// library's encoding of [key, hlc, node, op, expiry, epoch, task, value].
func TestCanonicalMatchesGenericCBOR(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 100 {
		for _, d := range randomSigned(r, round) {
			v := d.Value
			if v == nil {
				v = []byte{}
			}
			want, _ := cbor.Marshal([]any{d.Key, uint64(d.Stamp.HLC), d.Stamp.Node, uint8(d.Op), d.Expiry, d.Epoch, uint8(d.Task), v})
			if got := AppendCanonical(nil, d); !bytes.Equal(got, want) {
				t.Fatalf("canonical bytes of %+v differ from the library's", d)
			}
		}
	}
	// Every field is covered: changing any one changes the hash.
	d := sample()[0]
	for name, f := range map[string]func(*crdt.Delta){
		"key": func(d *crdt.Delta) { d.Key += "x" }, "hlc": func(d *crdt.Delta) { d.Stamp.HLC++ },
		"node": func(d *crdt.Delta) { d.Stamp.Node += "x" }, "op": func(d *crdt.Delta) { d.Op++ },
		"expiry": func(d *crdt.Delta) { d.Expiry++ }, "epoch": func(d *crdt.Delta) { d.Epoch++ },
		"task": func(d *crdt.Delta) { d.Task++ }, "value": func(d *crdt.Delta) { d.Value = append(slices.Clone(d.Value), 'x') },
	} {
		e := d
		f(&e)
		if Hash(e) == Hash(d) {
			t.Errorf("changing the %s leaves the hash unchanged", name)
		}
	}
}

// TestReaderIsStrict: forms the writer never produces are refused.
func TestReaderIsStrict(t *testing.T) {
	good, _ := Encode(certify([]crdt.Delta{{Key: "bl/x/1", Stamp: crdt.Stamp{HLC: 5, Node: "n"}, Op: crdt.OpPut, Expiry: -3, Value: []byte("v")}}, 1))
	if _, err := Decode(good, Limits{}); err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(good, []byte("bl/x/1")) + len("bl/x/1") // the hlc, 05
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, in := range map[string][]byte{
		"non-shortest integer": edit(func(b []byte) []byte { return slices.Concat(b[:at], []byte{0x18, 0x05}, b[at+1:]) }),
		"non-shortest length":  edit(func(b []byte) []byte { return slices.Concat(b[:2], []byte{0x98, 0x01}, b[3:]) }),
		"indefinite array":     edit(func(b []byte) []byte { b[0] = 0x9f; return append(b, 0xff) }),
		"tagged value":         edit(func(b []byte) []byte { return slices.Concat(b[:at], []byte{0xc1}, b[at:]) }),
		"null cert index":      edit(func(b []byte) []byte { return slices.Concat(b[:len(b)-2], []byte{0xf6, 0x00}) }),
		"bytes key":            edit(func(b []byte) []byte { b[at-7] = 0x46; return b }),
		"invalid UTF-8 key":    edit(func(b []byte) []byte { b[at-1] = 0xff; return b }),
		"invalid UTF-8 node":   edit(func(b []byte) []byte { b[4] = 0xff; return b }),
		"op over 255":          edit(func(b []byte) []byte { return slices.Concat(b[:at+2], []byte{0x19, 0x01, 0x00}, b[at+3:]) }),
		"trailing byte":        append(bytes.Clone(good), 0),
		"truncated":            good[:len(good)-1],
		"huge array claim":     {0x84, 0x03, 0x81, 0x61, 'n', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"huge string claim":    {0x84, 0x03, 0x81, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"reserved value":       edit(func(b []byte) []byte { b[at] = 0x1c; return b }),
	} {
		if _, err := Decode(in, Limits{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// BenchmarkDecode decodes a gossip-sized batch: 150 deltas of a 200-byte
// value from one writer under one cert (hashing each delta included).
func BenchmarkDecode(b *testing.B) {
	ds := make([]crdt.Delta, 150)
	for i := range ds {
		ds[i] = crdt.Delta{Key: fmt.Sprintf("bl/bench/t%09d", i), Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1700000000000, uint16(i)), Node: "12D3KooWQfGkPUkoLDEeJE3H3ZTmu9BZvAdbJpmhha8WpjeSLKMM"}, Op: crdt.OpPut, Value: bytes.Repeat([]byte("r"), 200)}
	}
	ds = certify(ds, 1)
	data, err := Encode(ds)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(data, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Encode(ds); err != nil {
				b.Fatal(err)
			}
		}
	})
}
