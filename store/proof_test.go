package store

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/record"
	"github.com/rumor-dev/rumor/wire"
)

// sameProofs fails unless every delta of got carries the proof of the
// equal delta in want.
func sameProofs(t *testing.T, got, want map[string]crdt.Entry) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		for i, d := range w.Deltas {
			gp, wp := g.Deltas[i].Proof, d.Proof
			if (gp.Cert == nil) != (wp.Cert == nil) || gp.Pos != wp.Pos {
				t.Fatalf("%s[%d]: proof %+v, want %+v", k, i, gp, wp)
			}
			if wp.Cert != nil && (gp.Cert.Sig != wp.Cert.Sig || len(gp.Cert.Hashes) != len(wp.Cert.Hashes) || gp.Cert.Hashes[gp.Pos] != wp.Cert.Hashes[wp.Pos]) {
				t.Fatalf("%s[%d]: cert differs", k, i)
			}
		}
	}
}

// diskCerts returns the signatures of the certs the file holds.
func diskCerts(t *testing.T, s *Store) map[[wire.SigSize]byte]bool {
	t.Helper()
	out := map[[wire.SigSize]byte]bool{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			_, c, err := record.DecodeCert(k, v)
			if err == nil {
				out[c.Sig] = true
			}
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Proofs are stored with their deltas and come back after a restart; a
// cert is stored once however many records use it, and loaded records
// share it again.
func TestProofsSurviveReopen(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(sample()...)
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, never)
	got := snapshot(s2)
	sameProofs(t, got, want)
	if got["svc/web/2"].Deltas[0].Proof.Cert != got["kernel/k1"].Deltas[0].Proof.Cert { // both n2's
		t.Error("two records of one cert do not share it after a reopen")
	}
	if n := len(diskCerts(t, s2)); n != 3 {
		t.Errorf("file holds %d certs, want one per writer (3)", n)
	}
}

// A local write is stored before its batch is signed; Attach adds the
// proof later, and it is persisted. A signed copy arriving by a merge
// does the same.
func TestAttachAddsProofs(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	d := put("bl/x/1", uint64(crdt.MakeHLC(5, 0)), "n1", "v")
	k := at("kernel/k", crdt.MakeHLC(6, 0), "n1", crdt.OpClaim)
	k.Epoch, k.Expiry = 1, 99
	s.Apply(d, k)
	signed := certify([]crdt.Delta{d, k})
	if ev := s.Watch("", 4); ev == nil {
		t.Fatal("no watcher")
	}
	s.Attach(signed)
	for _, key := range []string{"bl/x/1", "kernel/k"} {
		e, _ := s.Get(key)
		if e.Deltas[0].Proof.Cert == nil {
			t.Fatalf("%s: no proof after Attach", key)
		}
	}
	// A write that replaced the delta is left alone.
	later := put("bl/x/1", uint64(crdt.MakeHLC(7, 0)), "n1", "w")
	s.Apply(later)
	s.Attach(signed)
	if e, _ := s.Get("bl/x/1"); e.Deltas[0].Proof.Cert != nil {
		t.Fatal("Attach gave a proof to a delta it does not belong to")
	}
	// An equal signed delta that arrives by a merge gives its proof too.
	laterSigned := certify([]crdt.Delta{later})
	laterSigned[0].Proof.Cert.Sig[1] ^= 0xff // another batch, another signature
	s.Apply(laterSigned...)
	if e, _ := s.Get("bl/x/1"); e.Deltas[0].Proof.Cert == nil {
		t.Fatal("a signed copy of a stored unsigned delta did not give its proof")
	}
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameProofs(t, snapshot(openT(t, path, never)), want)
}

// A cert that no record uses any more leaves the file at the flush after
// the next Collect; one still used stays.
func TestUnusedCertsAreCollected(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	write := func(sig byte, hlc int64, keys ...string) [wire.SigSize]byte {
		var ds []crdt.Delta
		for _, k := range keys {
			ds = append(ds, put(k, uint64(crdt.MakeHLC(hlc, 0)), "n1", "v"))
		}
		ds = certify(ds)
		ds[0].Proof.Cert.Sig[0] = sig // each batch its own signature
		s.Apply(ds...)
		return ds[0].Proof.Cert.Sig
	}
	first := write(1, 10, "bl/x/a", "bl/x/b")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	second := write(2, 20, "bl/x/a") // bl/x/b still uses the first cert
	s.Collect(100, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if on := diskCerts(t, s); !on[first] || !on[second] || len(on) != 2 {
		t.Fatalf("certs on disk %v, want both", on)
	}
	write(3, 30, "bl/x/b")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !diskCerts(t, s)[first] {
		t.Fatal("a cert was deleted before Collect found it unused")
	}
	s.Collect(100, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if on := diskCerts(t, s); on[first] || len(on) != 2 {
		t.Fatalf("certs on disk %v: the unused first one should be gone", on)
	}
	// A cert found unused and then used again before the flush stays.
	reused := s.List("bl/x/a")[0].Deltas[0]
	write(4, 40, "bl/x/a")
	s.Collect(100, 1) // second's cert is unused now
	again := reused
	again.Key = "bl/x/c"
	s.Apply(again) // a delta of that cert under another key (as if it arrived late)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !diskCerts(t, s)[second] {
		t.Fatal("a cert used again after Collect was deleted")
	}
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameProofs(t, snapshot(openT(t, path, never)), want)
}

// Options.Check judges every record of the file: refused ones are left
// out, counted, and the file is rewritten without them.
func TestCheckRefusesRecords(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(sample()...)
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	forged := errors.New("forged")
	check := func(ds []crdt.Delta) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			if d.Stamp.Node == "n3" {
				errs[i] = forged
			}
		}
		return errs
	}
	s2, err := Open(path, Options{FlushInterval: never, Logger: quiet, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Refused() != 3 {
		t.Errorf("Refused = %d, want 3 (n3's deltas)", s2.Refused())
	}
	for k, e := range want {
		if strings.HasPrefix(k, "bl/") || k == "kernel/k2" {
			if _, ok := s2.Get(k); ok {
				t.Errorf("%s written by n3 was loaded", k)
			}
			delete(want, k)
		} else if _, ok := s2.Get(k); !ok {
			t.Errorf("%s lost", k)
		} else {
			_ = e
		}
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openT(t, path, never)
	if s3.Refused() != 0 {
		t.Error("Open without a check refused records")
	}
	sameState(t, "after the rewrite", snapshot(s3), want)
}
