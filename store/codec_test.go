package store

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

func TestCodecRoundTrip(t *testing.T) {
	s := New()
	s.Apply(sample()...)
	// Two kernel records under one stamp (a forgery): still canonical.
	tie := rec("kernel/k1", 2000, "n1", crdt.OpRenew, 1, 7000)
	s.Apply(tie)
	for _, e := range s.List("") {
		b, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEntry(e.Key, b)
		if err != nil {
			t.Fatalf("%s: %v", e.Key, err)
		}
		if !got.Equal(e) {
			t.Fatalf("%s: round trip %+v, want %+v", e.Key, got, e)
		}
		// The result does not alias the input bytes.
		for i := range b {
			b[i] = 0
		}
		if !got.Equal(e) {
			t.Fatalf("%s: decoded entry aliases the encoded bytes", e.Key)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	mustMarshal := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	delta := []any{uint64(5), "n1", uint8(crdt.OpPut), int64(0), uint64(0), uint8(0), []byte("x")}
	k1 := []any{uint64(crdt.MakeHLC(2, 0)), "n1", uint8(crdt.OpClaim), int64(9), uint64(1), uint8(0), []byte(nil)}
	k0 := []any{uint64(crdt.MakeHLC(1, 0)), "n1", uint8(crdt.OpClaim), int64(9), uint64(1), uint8(0), []byte(nil)}
	// Same stamp, content out of order: OpRenew sorts after OpClaim.
	kRenew := []any{uint64(crdt.MakeHLC(1, 0)), "n1", uint8(crdt.OpRenew), int64(9), uint64(1), uint8(0), []byte(nil)}

	if _, err := decodeEntry("svc/a/1", mustMarshal([]any{1, []any{delta}})); err != nil {
		t.Fatalf("baseline record refused: %v", err)
	}
	for name, tc := range map[string]struct {
		key string
		b   []byte
	}{
		"empty":               {"svc/a/1", nil},
		"not an array":        {"svc/a/1", mustMarshal("hello")},
		"unknown version":     {"svc/a/1", mustMarshal([]any{2, []any{delta}})},
		"no deltas":           {"svc/a/1", mustMarshal([]any{1, []any{}})},
		"extra field":         {"svc/a/1", mustMarshal([]any{1, []any{delta}, "extra"})},
		"short delta":         {"svc/a/1", mustMarshal([]any{1, []any{delta[:6]}})},
		"long delta":          {"svc/a/1", mustMarshal([]any{1, []any{append(append([]any{}, delta...), 1)}})},
		"op overflows uint8":  {"svc/a/1", mustMarshal([]any{1, []any{[]any{uint64(5), "n1", 300, int64(0), uint64(0), uint8(0), []byte("x")}}})},
		"negative hlc":        {"svc/a/1", mustMarshal([]any{1, []any{[]any{-5, "n1", 1, int64(0), uint64(0), uint8(0), []byte("x")}}})},
		"node not text":       {"svc/a/1", mustMarshal([]any{1, []any{[]any{uint64(5), []byte("n1"), 1, int64(0), uint64(0), uint8(0), []byte("x")}}})},
		"map instead":         {"svc/a/1", mustMarshal(map[string]any{"v": 1})},
		"tagged":              {"svc/a/1", mustMarshal(cbor.Tag{Number: 55799, Content: []any{1, []any{delta}}})},
		"indefinite array":    {"svc/a/1", []byte{0x9f, 0x01, 0x80, 0xff}},
		"trailing byte":       {"svc/a/1", append(mustMarshal([]any{1, []any{delta}}), 0)},
		"register with two":   {"svc/a/1", mustMarshal([]any{1, []any{delta, delta}})},
		"kernel out of order": {"kernel/k", mustMarshal([]any{1, []any{k1, k0}})},
		"kernel duplicate":    {"kernel/k", mustMarshal([]any{1, []any{k0, k0}})},
		"kernel tie misorder": {"kernel/k", mustMarshal([]any{1, []any{kRenew, k0}})},
	} {
		t.Run(name, func(t *testing.T) {
			if e, err := decodeEntry(tc.key, tc.b); !errors.Is(err, errBadRecord) {
				t.Fatalf("decoded %+v, err %v; want errBadRecord", e, err)
			}
		})
	}
	// Ordered records that merges would have pruned (a file written before
	// they did) are accepted, and come back pruned: k1 is a later claim of
	// the same writer and epoch as k0.
	e, err := decodeEntry("kernel/k", mustMarshal([]any{1, []any{k0, kRenew, k1}}))
	if err != nil {
		t.Fatalf("ordered kernel refused: %v", err)
	}
	if len(e.Deltas) != 2 || e.Deltas[0].Op != crdt.OpClaim || e.Deltas[1].Op != crdt.OpRenew {
		t.Fatalf("ordered kernel decoded to %+v, want k0 and kRenew", e.Deltas)
	}
}

// A kernel entry from a file written before merges pruned lease records
// holds every renewal; it decodes to what Apply keeps of them.
func TestDecodePrunesOldKernelEntries(t *testing.T) {
	const k = "kernel/k"
	all := []crdt.Delta{rec(k, 1000, "n1", crdt.OpClaim, 1, 4000)}
	for at := int64(2000); at <= 100_000; at += 1000 {
		all = append(all, rec(k, at, "n1", crdt.OpRenew, 1, at+3000))
	}
	b, err := encodeEntry(crdt.Entry{Key: k, Deltas: all}) // as an older build stored it
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry(k, b)
	if err != nil {
		t.Fatal(err)
	}
	want := crdt.Entry{Key: k, Deltas: []crdt.Delta{all[0], all[len(all)-1]}}
	if !got.Equal(want) {
		t.Fatalf("decoded %d records %+v, want the claim and the last renewal", len(got.Deltas), got.Deltas)
	}
	if crdt.Resolve(got) != crdt.Resolve(crdt.Entry{Key: k, Deltas: all}) {
		t.Fatalf("lease changed by decoding: %+v, was %+v", crdt.Resolve(got), crdt.Resolve(crdt.Entry{Key: k, Deltas: all}))
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range func() []crdt.Entry { s := New(); s.Apply(sample()...); return s.List("") }() {
		b, _ := encodeEntry(e)
		f.Add(e.Key, b)
	}
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		e, err := decodeEntry(key, b)
		if err != nil {
			return
		}
		b2, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := decodeEntry(key, b2)
		if err != nil || !e2.Equal(e) {
			t.Fatalf("accepted record does not round-trip: %v", err)
		}
	})
}
