package identity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

func newSigner(t testing.TB, cluster string) *Signer {
	t.Helper()
	k, _, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k, cluster)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func batch(writer string, n int) []crdt.Delta {
	ds := make([]crdt.Delta, n)
	for i := range ds {
		ds[i] = crdt.Delta{Key: fmt.Sprintf("bl/fraud/u%d", i), Stamp: crdt.Stamp{HLC: crdt.HLC(100 + i), Node: writer}, Op: crdt.OpPut, Value: []byte(`{}`)}
	}
	return ds
}

func wantErrs(t *testing.T, errs []error, want ...error) {
	t.Helper()
	for i, err := range errs {
		if w := want[min(i, len(want)-1)]; !errors.Is(err, w) || (w == nil && err != nil) {
			t.Errorf("delta %d: err = %v, want %v", i, err, w)
		}
	}
}

func TestSignVerify(t *testing.T) {
	s := newSigner(t, "prod")
	ds := batch(s.ID(), 5)
	if err := s.Sign(ds); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier("prod")
	wantErrs(t, v.Verify(ds), nil)
	// Each delta verifies alone, away from its batch (anti-entropy, the store).
	for _, d := range ds {
		wantErrs(t, v.Verify([]crdt.Delta{d}), nil)
		wantErrs(t, NewVerifier("prod").Verify([]crdt.Delta{d}), nil)
	}
	// Through the wire, as a whole batch and as a part of one.
	for _, part := range [][]crdt.Delta{ds, ds[1:3]} {
		b, err := wire.Encode(part)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.Decode(b, wire.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		wantErrs(t, NewVerifier("prod").Verify(got), nil)
	}
}

func TestSignRefusesAnotherWriter(t *testing.T) {
	s := newSigner(t, "prod")
	ds := batch(s.ID(), 2)
	ds[1].Stamp.Node = newSigner(t, "prod").ID()
	if err := s.Sign(ds); err == nil {
		t.Fatal("signed a delta in another node's name")
	}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	s, other := newSigner(t, "prod"), newSigner(t, "prod")
	signed := func() []crdt.Delta {
		ds := batch(s.ID(), 3)
		if err := s.Sign(ds); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	v := NewVerifier("prod")
	for _, tc := range []struct {
		name   string
		forge  func([]crdt.Delta) []crdt.Delta
		want   error
		whichs []int // deltas refused; the others verify
	}{
		{"unsigned", func(ds []crdt.Delta) []crdt.Delta { ds[0].Proof = crdt.Proof{}; return ds }, ErrUnsigned, []int{0}},
		{"value changed", func(ds []crdt.Delta) []crdt.Delta { ds[1].Value = []byte(`{"x":1}`); return ds }, ErrForged, []int{1}},
		{"op changed (add to remove)", func(ds []crdt.Delta) []crdt.Delta { ds[1].Op = crdt.OpDelete; return ds }, ErrForged, []int{1}},
		{"stamp moved later", func(ds []crdt.Delta) []crdt.Delta { ds[2].Stamp.HLC += 1000; return ds }, ErrForged, []int{2}},
		{"another node's name on a signed delta", func(ds []crdt.Delta) []crdt.Delta { ds[0].Stamp.Node = other.ID(); return ds }, ErrForged, []int{0}},
		{"cert lists a forged hash", func(ds []crdt.Delta) []crdt.Delta {
			c := *ds[0].Proof.Cert
			c.Hashes = slices.Clone(c.Hashes)
			ds[0].Value = []byte(`{"forged":1}`)
			c.Hashes[0] = wire.Hash(ds[0])
			ds[0].Proof.Cert = &c
			return ds
		}, ErrForged, []int{0}},
		{"signature flipped", func(ds []crdt.Delta) []crdt.Delta {
			c := *ds[0].Proof.Cert
			c.Sig[5] ^= 1
			for i := range ds {
				ds[i].Proof.Cert = &c
			}
			return ds
		}, ErrForged, []int{0, 1, 2}},
		{"position out of the cert", func(ds []crdt.Delta) []crdt.Delta { ds[0].Proof.Pos = 7; return ds }, ErrForged, []int{0}},
		{"writer is not a node id", func(ds []crdt.Delta) []crdt.Delta { ds[0].Stamp.Node = "mallory"; return ds }, ErrForged, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := v.Verify(tc.forge(signed()))
			for i, err := range errs {
				if slices.Contains(tc.whichs, i) != (err != nil) || (err != nil && !errors.Is(err, tc.want)) {
					t.Errorf("delta %d: err = %v, want %v: %v", i, err, slices.Contains(tc.whichs, i), tc.want)
				}
			}
		})
	}
	// A cert signed by the other node for deltas naming s: the other node
	// signs in its own name only, so a forger would have to re-sign.
	ds := batch(s.ID(), 2)
	ds2 := batch(other.ID(), 2)
	if err := other.Sign(ds2); err != nil {
		t.Fatal(err)
	}
	c := &crdt.Cert{Sig: ds2[0].Proof.Cert.Sig, Hashes: [][wire.HashSize]byte{wire.Hash(ds[0]), wire.Hash(ds[1])}}
	ds[0].Proof, ds[1].Proof = crdt.Proof{Cert: c}, crdt.Proof{Cert: c, Pos: 1}
	wantErrs(t, v.Verify(ds), ErrForged)
}

// A cert of one cluster is no cert in another.
func TestVerifyIsPerCluster(t *testing.T) {
	s := newSigner(t, "prod")
	ds := batch(s.ID(), 2)
	if err := s.Sign(ds); err != nil {
		t.Fatal(err)
	}
	wantErrs(t, NewVerifier("staging").Verify(ds), ErrForged)
}

// The verified-cert cache must not turn a verified signature into a pass
// for other hashes or another writer.
func TestVerifyCacheIsBoundToTheMessage(t *testing.T) {
	s := newSigner(t, "prod")
	ds := batch(s.ID(), 2)
	if err := s.Sign(ds); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier("prod")
	wantErrs(t, v.Verify(ds), nil)
	forged := batch(s.ID(), 2)
	forged[0].Value = []byte(`{"evil":1}`)
	c := &crdt.Cert{Sig: ds[0].Proof.Cert.Sig, Hashes: [][wire.HashSize]byte{wire.Hash(forged[0]), wire.Hash(forged[1])}}
	forged[0].Proof, forged[1].Proof = crdt.Proof{Cert: c}, crdt.Proof{Cert: c, Pos: 1}
	wantErrs(t, v.Verify(forged), ErrForged)
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	again, err := LoadOrCreate(dir)
	if err != nil || !again.Equals(k) {
		t.Fatalf("second load: %v, same key %v", err, again.Equals(k))
	}
	id, err := NodeID(dir)
	if want, _ := peer.IDFromPrivateKey(k); err != nil || id != want {
		t.Fatalf("NodeID = %v, %v; want %v", id, err, want)
	}
	if _, err := NodeID(t.TempDir()); err == nil {
		t.Error("NodeID of an empty dir: no error")
	}
	if err := os.WriteFile(filepath.Join(dir, File), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Error("a corrupt key file was accepted (or replaced)")
	}
	rsa, _, _ := crypto.GenerateSecp256k1Key(nil)
	b, _ := crypto.MarshalPrivateKey(rsa)
	if err := os.WriteFile(filepath.Join(dir, File), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Error("a non-ed25519 key was accepted")
	}
}

func BenchmarkVerify(b *testing.B) {
	s := newSigner(b, "prod")
	ds := batch(s.ID(), 256)
	if err := s.Sign(ds); err != nil {
		b.Fatal(err)
	}
	b.Run("batch-of-256-fresh", func(b *testing.B) {
		for b.Loop() {
			NewVerifier("prod").Verify(ds)
		}
	})
	v := NewVerifier("prod")
	b.Run("batch-of-256-cached", func(b *testing.B) {
		for b.Loop() {
			v.Verify(ds)
		}
	})
	b.Run("sign-256", func(b *testing.B) {
		for b.Loop() {
			_ = s.Sign(ds)
		}
	})
}
