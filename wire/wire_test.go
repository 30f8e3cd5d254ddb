package wire

import (
	"bytes"
	"errors"
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

func TestDecodeRejects(t *testing.T) {
	v2, _ := cbor.Marshal([]any{2, []any{}})
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
		{"unknown version", v2, Limits{}, ErrVersion},
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
	empty, _ := Encode(nil)
	f.Add(empty)
	f.Add([]byte{0x82, 0x01, 0x80})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Decode(in, Limits{})
		if err != nil {
			return
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
