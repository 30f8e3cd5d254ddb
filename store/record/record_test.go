package record

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/rumor-dev/rumor/crdt"
)

func TestDecodeIsStrict(t *testing.T) {
	mustMarshal := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certs := map[uint64]*crdt.Cert{7: {Hashes: make([][32]byte, 2)}}
	delta := []any{uint64(5), "n1", uint8(crdt.OpPut), int64(0), uint64(0), uint8(0), []byte("x"), 7, 1}
	k1 := []any{uint64(crdt.MakeHLC(2, 0)), "n1", uint8(crdt.OpClaim), int64(9), uint64(1), uint8(0), []byte(nil), 0, 0}
	k0 := []any{uint64(crdt.MakeHLC(1, 0)), "n1", uint8(crdt.OpClaim), int64(9), uint64(1), uint8(0), []byte(nil), 0, 0}
	// Same stamp, content out of order: OpRenew sorts after OpClaim.
	kRenew := []any{uint64(crdt.MakeHLC(1, 0)), "n1", uint8(crdt.OpRenew), int64(9), uint64(1), uint8(0), []byte(nil), 0, 0}
	with := func(f func([]any)) []any { d := append([]any{}, delta...); f(d); return d }

	if _, err := DecodeEntry("svc/a/1", mustMarshal([]any{2, []any{delta}}), certs); err != nil {
		t.Fatalf("baseline record refused: %v", err)
	}
	for name, tc := range map[string]struct {
		key string
		b   []byte
	}{
		"empty":                {"svc/a/1", nil},
		"not an array":         {"svc/a/1", mustMarshal("hello")},
		"unknown version":      {"svc/a/1", mustMarshal([]any{3, []any{delta}})},
		"version 1 (unsigned)": {"svc/a/1", mustMarshal([]any{1, []any{delta[:7]}})},
		"no deltas":            {"svc/a/1", mustMarshal([]any{2, []any{}})},
		"extra field":          {"svc/a/1", mustMarshal([]any{2, []any{delta}, "extra"})},
		"short delta":          {"svc/a/1", mustMarshal([]any{2, []any{delta[:8]}})},
		"long delta":           {"svc/a/1", mustMarshal([]any{2, []any{append(append([]any{}, delta...), 1)}})},
		"op overflows uint8":   {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[2] = 300 })}})},
		"negative hlc":         {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[0] = -5 })}})},
		"node not text":        {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[1] = []byte("n1") })}})},
		"unknown cert":         {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[7] = 8 })}})},
		"cert not a number":    {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[7] = []byte("x") })}})},
		"position past cert":   {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[8] = 2 })}})},
		"position, no cert":    {"svc/a/1", mustMarshal([]any{2, []any{with(func(d []any) { d[7] = 0 })}})},
		"map instead":          {"svc/a/1", mustMarshal(map[string]any{"v": 1})},
		"tagged":               {"svc/a/1", mustMarshal(cbor.Tag{Number: 55799, Content: []any{2, []any{delta}}})},
		"indefinite array":     {"svc/a/1", []byte{0x9f, 0x02, 0x80, 0xff}},
		"trailing byte":        {"svc/a/1", append(mustMarshal([]any{2, []any{delta}}), 0)},
		"register with two":    {"svc/a/1", mustMarshal([]any{2, []any{delta, delta}})},
		"kernel out of order":  {"kernel/k", mustMarshal([]any{2, []any{k1, k0}})},
		"kernel duplicate":     {"kernel/k", mustMarshal([]any{2, []any{k0, k0}})},
		"kernel tie misorder":  {"kernel/k", mustMarshal([]any{2, []any{kRenew, k0}})},
	} {
		t.Run(name, func(t *testing.T) {
			if e, err := DecodeEntry(tc.key, tc.b, certs); !errors.Is(err, ErrBad) {
				t.Fatalf("decoded %+v, err %v; want ErrBad", e, err)
			}
		})
	}
	if _, err := DecodeEntry("kernel/k", mustMarshal([]any{2, []any{k0, kRenew}}), certs); err != nil {
		t.Fatalf("canonical kernel refused: %v", err)
	}
	// Ordered, but holding a record merges prune (k1 is a later claim of
	// the same writer and epoch as k0): not what this build writes.
	if _, err := DecodeEntry("kernel/k", mustMarshal([]any{2, []any{k0, kRenew, k1}}), certs); !errors.Is(err, ErrBad) {
		t.Fatalf("unpruned kernel: err %v, want ErrBad", err)
	}
}
