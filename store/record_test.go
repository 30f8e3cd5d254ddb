package store

import (
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/record"
)

// numbering numbers certs as a file would: each a number of its own, from 1.
type numbering struct {
	of    map[*crdt.Cert]uint64
	certs map[uint64]*crdt.Cert
}

func newNumbering() *numbering {
	return &numbering{of: map[*crdt.Cert]uint64{}, certs: map[uint64]*crdt.Cert{}}
}

func (n *numbering) num(c *crdt.Cert) uint64 {
	if k, ok := n.of[c]; ok {
		return k
	}
	k := uint64(len(n.of) + 1)
	n.of[c], n.certs[k] = k, c
	return k
}

func TestCodecRoundTrip(t *testing.T) {
	s := New()
	s.Apply(sample()...)
	// Two kernel records under one stamp (a forgery): still canonical.
	tie := rec("kernel/k1", 2000, "n1", crdt.OpRenew, 1, 7000)
	s.Apply(tie)
	for _, e := range s.List("") {
		nums := newNumbering()
		b, err := record.EncodeEntry(e, nums.num)
		if err != nil {
			t.Fatal(err)
		}
		got, err := record.DecodeEntry(e.Key, b, nums.certs)
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

func FuzzDecodeEntry(f *testing.F) {
	nums := newNumbering()
	for _, e := range func() []crdt.Entry { s := New(); s.Apply(sample()...); return s.List("") }() {
		b, _ := record.EncodeEntry(e, nums.num)
		f.Add(e.Key, b)
	}
	certs := nums.certs
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		e, err := record.DecodeEntry(key, b, certs)
		if err != nil {
			return
		}
		b2, err := record.EncodeEntry(e, nums.num)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := record.DecodeEntry(key, b2, certs)
		if err != nil || !e2.Equal(e) {
			t.Fatalf("accepted record does not round-trip: %v", err)
		}
	})
}
