package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/record"
	"github.com/rumor-dev/rumor/store/watch"
	"github.com/rumor-dev/rumor/wire"
)

// quiet is the logger of every test store.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// never keeps the flusher from firing during a test: only Flush and Close write.
const never = time.Hour

func openT(t testing.TB, path string, flush time.Duration) *Store {
	t.Helper()
	s, err := Open(path, Options{FlushInterval: flush, Logger: quiet})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dataPath(t testing.TB) string { return filepath.Join(t.TempDir(), "rumor.db") }

func at(key string, hlc crdt.HLC, node string, op crdt.Op) crdt.Delta {
	return crdt.Delta{Key: key, Stamp: crdt.Stamp{HLC: hlc, Node: node}, Op: op}
}

// sample returns deltas over every namespace, kernels with several records.
func sample() []crdt.Delta {
	h := func(ms int64) crdt.HLC { return crdt.MakeHLC(ms, 0) }
	claim := func(key string, ms int64, node string, epoch uint64, exp int64) crdt.Delta {
		d := at(key, h(ms), node, crdt.OpClaim)
		d.Epoch, d.Expiry, d.Value = epoch, exp, []byte("job")
		return d
	}
	renew := func(key string, ms int64, node string, epoch uint64, exp int64) crdt.Delta {
		d := at(key, h(ms), node, crdt.OpRenew)
		d.Epoch, d.Expiry = epoch, exp
		return d
	}
	svc := at("svc/web/1", h(1000), "n1", crdt.OpPut)
	svc.Value, svc.Expiry = crdt.Encode(crdt.ServiceValue{Addr: "10.0.0.1:80", Status: "up"}), 99_000
	task := at("task/t1", h(1100), "n2", crdt.OpPut)
	task.Task, task.Value = crdt.TaskRunning, []byte{}
	return certify([]crdt.Delta{
		svc,
		put("svc/web/2", uint64(h(1001)), "n2", "x"),
		at("bl/tokens/abc", h(1200), "n3", crdt.OpDelete),
		put("bl/tokens/def", uint64(h(1201)), "n3", ""),
		task,
		put("node/n1", uint64(h(1300)), "n1", `{"region":"eu"}`),
		claim("kernel/k1", 2000, "n1", 1, 5000),
		renew("kernel/k1", 3000, "n1", 1, 8000),
		claim("kernel/k1", 2500, "n2", 1, 6000),
		claim("kernel/k1", 9000, "n2", 2, 19000),
		claim("kernel/k2", 2000, "n3", 1, 4000),
	})
}

// certify signs ds the way writers do, as far as the store can tell: one
// cert per writer over its deltas (the signature is made up: the store
// keeps proofs, it does not check them). bl/tokens/def stays unsigned, as a
// local write whose batch is not signed yet.
func certify(ds []crdt.Delta) []crdt.Delta {
	certs := map[string]*crdt.Cert{}
	for i, d := range ds {
		if d.Key == "bl/tokens/def" {
			continue
		}
		c := certs[d.Stamp.Node]
		if c == nil {
			c = &crdt.Cert{}
			copy(c.Sig[:], d.Stamp.Node)
			certs[d.Stamp.Node] = c
		}
		ds[i].Proof = crdt.Proof{Cert: c, Pos: uint16(len(c.Hashes))}
		c.Hashes = append(c.Hashes, wire.Hash(d))
	}
	return ds
}

// diskEntries reads the entries bucket of an open store's file.
func diskEntries(t testing.TB, s *Store) map[string]crdt.Entry {
	t.Helper()
	out := map[string]crdt.Entry{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		certs := map[uint64]*crdt.Cert{}
		if err := tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
			n, c, err := record.DecodeCert(k, v)
			if err == nil {
				certs[n] = c
			}
			return err
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			e, err := record.DecodeEntry(string(k), v, certs)
			out[string(k)] = e
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot copies a store's whole state.
func snapshot(s *Store) map[string]crdt.Entry {
	out := map[string]crdt.Entry{}
	for _, e := range s.List("") {
		out[e.Key] = e
	}
	return out
}

func sameState(t testing.TB, what string, got, want map[string]crdt.Entry) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !g.Equal(w) {
			t.Errorf("%s: key %s = %+v (present %v), want %+v", what, k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %s", what, k)
		}
	}
}

func TestOpenRoundTrip(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	if s.Len() != 0 {
		t.Fatalf("new store has %d keys", s.Len())
	}
	s.Apply(sample()...)
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, never)
	sameState(t, "after reopen", snapshot(s2), want)
	if s2.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", s2.Len(), len(want))
	}
	// The loaded entries merge like the originals: re-applying changes nothing.
	if ch := s2.Apply(sample()...); len(ch) != 0 {
		t.Fatalf("re-applying the same deltas changed %d entries", len(ch))
	}
	if l := crdt.Resolve(want["kernel/k1"]); crdt.Resolve(snapshot(s2)["kernel/k1"]) != l {
		t.Fatalf("lease differs after reopen")
	}
}

func TestOpenCreatesPrivateFileAndDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sub", "rumor.db")
	s := openT(t, path, never)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriteBehindFlush(t *testing.T) {
	s := openT(t, dataPath(t), never)
	s.Apply(sample()...)
	if n := len(diskEntries(t, s)); n != 0 {
		t.Fatalf("%d entries on disk before any flush (write-behind expected)", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	sameState(t, "disk after Flush", diskEntries(t, s), snapshot(s))
	// A later change overwrites the key on disk.
	s.Apply(put("svc/web/2", uint64(crdt.MakeHLC(5000, 0)), "n2", "y"))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	sameState(t, "disk after second Flush", diskEntries(t, s), snapshot(s))
	if err := s.Flush(); err != nil { // nothing dirty
		t.Fatal(err)
	}
	if c := s.commits.Load(); c != 2 {
		t.Fatalf("%d commits, want 2 (an empty flush writes nothing)", c)
	}
}

func TestFlusherGroupsWrites(t *testing.T) {
	s := openT(t, dataPath(t), 20*time.Millisecond)
	const n = 2000
	for i := range n {
		s.Apply(put(fmt.Sprintf("svc/a/%d", i), uint64(i+1), "n1", "v"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(diskEntries(t, s)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("flusher wrote %d of %d keys", len(diskEntries(t, s)), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sameState(t, "disk after write-behind", diskEntries(t, s), snapshot(s))
	if c := s.commits.Load(); c > n/20 {
		t.Fatalf("%d commits for %d single-delta applies: not grouped", c, n)
	}
	t.Logf("%d single-delta applies written in %d commits", n, s.commits.Load())
}

func TestCrashKeepsExactlyTheFlushedState(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(sample()...)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed := snapshot(s)
	// More changes that never reach the disk: new keys, an overwrite, a
	// new kernel record.
	s.Apply(
		put("svc/web/3", uint64(crdt.MakeHLC(7000, 0)), "n1", "new"),
		put("svc/web/2", uint64(crdt.MakeHLC(7000, 0)), "n2", "changed"),
		crdt.Delta{Key: "kernel/k2", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(3000, 0), Node: "n3"}, Op: crdt.OpRelease, Epoch: 1},
	)
	if err := s.closeWithoutFlush(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, never)
	sameState(t, "after crash", snapshot(s2), flushed)
}

func TestReserveHLCAndMetaSurviveCrash(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	if s.ReservedHLC() != 0 {
		t.Fatalf("new store has reservation %v", s.ReservedHLC())
	}
	if _, ok := s.Meta("last-run"); ok {
		t.Fatal("new store has meta")
	}
	want := crdt.MakeHLC(1_700_000_001_000, 0)
	for _, h := range []crdt.HLC{crdt.MakeHLC(1_700_000_000_000, 0), want, crdt.MakeHLC(5, 0)} {
		if err := s.ReserveHLC(h); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.ReservedHLC(); got != want {
		t.Fatalf("ReservedHLC = %v, want %v (never lowered)", got, want)
	}
	if err := s.SetMeta("last-run", []byte("1700000000000")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta("", []byte("x")); err == nil {
		t.Fatal("SetMeta with an empty key succeeded")
	}
	if err := s.closeWithoutFlush(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, never)
	if got := s2.ReservedHLC(); got != want {
		t.Fatalf("after crash ReservedHLC = %v, want %v", got, want)
	}
	if v, ok := s2.Meta("last-run"); !ok || string(v) != "1700000000000" {
		t.Fatalf("Meta(last-run) = %q, %v", v, ok)
	}
	if v, ok := s2.Meta("empty"); !ok || len(v) != 0 {
		t.Fatalf("Meta(empty) = %q, %v", v, ok)
	}
	// Meta returns a copy.
	v, _ := s2.Meta("last-run")
	v[0] = 'X'
	if v2, _ := s2.Meta("last-run"); v2[0] != '1' {
		t.Fatal("Meta result aliases the store")
	}
}

func TestMemoryStoreKeepsMetaInMemory(t *testing.T) {
	s := New()
	if err := s.ReserveHLC(42); err != nil || s.ReservedHLC() != 42 {
		t.Fatalf("ReserveHLC on New: %v, %v", err, s.ReservedHLC())
	}
	if err := s.SetMeta("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Meta("k"); !ok || string(v) != "v" {
		t.Fatalf("Meta = %q, %v", v, ok)
	}
	s.Apply(sample()...)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(); err != nil || s.Len() != 0 {
		t.Fatalf("Reset: %v, Len %d", err, s.Len())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// withBolt opens a closed data file with bbolt directly and runs fn in a
// write transaction.
func withBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// refuses checks that Open fails with want, names the file and the
// recovery command, and leaves the file byte for byte as it was.
func refuses(t *testing.T, path string, want error) error {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Logger: quiet, LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("Open succeeded, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open error %q does not wrap %q", err, want)
	}
	for _, part := range []string{path, "rumor agent --reset-state", "move it away"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("error %q lacks the store: prefix", err)
	}
	after, err2 := os.ReadFile(path)
	if err2 != nil {
		t.Fatal(err2)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("Open modified a file it refused")
	}
	return err
}

func TestVersionMismatchRefused(t *testing.T) {
	for _, v := range []uint64{FormatVersion + 1, 0, 1} {
		path := dataPath(t)
		s := openT(t, path, never)
		s.Apply(sample()...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		withBolt(t, path, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint64(nil, v))
		})
		err := refuses(t, path, ErrVersion)
		if !strings.Contains(err.Error(), fmt.Sprintf("format %d", v)) {
			t.Errorf("error %q does not name the found version", err)
		}
		t.Logf("version %d: %v", v, err)
	}
}

func TestGarbageFileRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for name, content := range map[string][]byte{
		"random 64K":   random(64 << 10),
		"random 100B":  random(100),
		"one byte":     {0},
		"zeros 16K":    make([]byte, 16<<10),
		"text":         []byte("this is not a database\n"),
		"random 4097B": random(4097),
	} {
		t.Run(name, func(t *testing.T) {
			path := dataPath(t)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			err := refuses(t, path, ErrCorrupt)
			t.Logf("%v", err)
		})
	}
}

func TestTruncatedFileRefused(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	for i := range 5000 {
		s.Apply(put(fmt.Sprintf("svc/a/%05d", i), uint64(i+1), "n1", strings.Repeat("v", 50)))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var used int64
	if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{used / 2, used - 4096, 3 * 4096, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if err := os.WriteFile(path, orig[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			err := refuses(t, path, ErrCorrupt)
			t.Logf("%v", err)
		})
	}
}

func TestNotARumorFileRefused(t *testing.T) {
	path := dataPath(t)
	withBolt(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("someone-else"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	refuses(t, path, ErrCorrupt)
}

func TestBadRecordRefused(t *testing.T) {
	noCert := func(*crdt.Cert) uint64 { return 0 }
	good, err := record.EncodeEntry(crdt.Entry{Key: "svc/a/1", Deltas: []crdt.Delta{put("svc/a/1", 5, "n", "x")}}, noCert)
	if err != nil {
		t.Fatal(err)
	}
	two, err := record.EncodeEntry(crdt.Entry{Key: "svc/a/1", Deltas: []crdt.Delta{put("svc/a/1", 5, "n", "x"), put("svc/a/1", 6, "n", "y")}}, noCert)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		key, val []byte
	}{
		"garbage":           {[]byte("svc/a/1"), []byte{0xff, 0x00, 0x13}},
		"empty value":       {[]byte("svc/a/1"), []byte{}},
		"trailing bytes":    {[]byte("svc/a/1"), append(append([]byte{}, good...), 0x00)},
		"truncated record":  {[]byte("svc/a/1"), good[:len(good)-1]},
		"register with two": {[]byte("svc/a/1"), two},
	} {
		t.Run(name, func(t *testing.T) {
			path := dataPath(t)
			s := openT(t, path, never)
			s.Apply(sample()...)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			withBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketEntries).Put(tc.key, tc.val) })
			err := refuses(t, path, ErrCorrupt)
			if !strings.Contains(err.Error(), string(tc.key)) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestSecondOpenFailsFastOnLock(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(sample()...)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{Logger: quiet, LockTimeout: 100 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by another agent") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q: want ErrLocked naming the file", err)
	}
	if took > 5*time.Second {
		t.Fatalf("second Open took %v", took)
	}
	if _, err := ResetFile(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("ResetFile of a file in use: %v, want ErrLocked", err)
	}
	// The first store is unharmed and the file opens once it is closed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openT(t, path, never).Len(); got != len(snapshot(s)) {
		t.Fatalf("reopened store has %d keys", got)
	}
	t.Logf("locked: %v after %v", err, took)
}

func TestDefaultLockTimeoutIsBounded(t *testing.T) {
	path := dataPath(t)
	openT(t, path, never)
	start := time.Now()
	_, err := Open(path, Options{Logger: quiet})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err %v, want ErrLocked", err)
	}
	if took := time.Since(start); took < DefaultLockTimeout/2 || took > DefaultLockTimeout+5*time.Second {
		t.Fatalf("took %v with the default timeout %v", took, DefaultLockTimeout)
	}
}

func TestReset(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(sample()...)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveHLC(1234); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta("last-run", []byte("7")); err != nil {
		t.Fatal(err)
	}
	s.Apply(put("svc/unflushed/1", 9, "n", "x")) // dirty at reset: must not come back
	w := s.Watch("", 100)
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || len(diskEntries(t, s)) != 0 {
		t.Fatalf("after Reset: %d keys in memory, %d on disk", s.Len(), len(diskEntries(t, s)))
	}
	if len(w.C()) != 0 {
		t.Fatalf("Reset fired %d watch events", len(w.C()))
	}
	// The state resyncs from a peer afterwards.
	s.Apply(put("svc/from-peer/1", 10, "p", "y"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, never)
	if got := snapshot(s2); len(got) != 1 || got["svc/from-peer/1"].Key == "" {
		t.Fatalf("after Reset and reopen: %v", got)
	}
	if s2.ReservedHLC() != 1234 {
		t.Fatalf("Reset lost the HLC reservation: %v", s2.ReservedHLC())
	}
	if v, ok := s2.Meta("last-run"); !ok || string(v) != "7" {
		t.Fatalf("Reset lost meta: %q %v", v, ok)
	}
}

func TestResetFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rumor.db")
	if moved, err := ResetFile(path); err != nil || moved != "" {
		t.Fatalf("ResetFile of a missing file = %q, %v", moved, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	refuses(t, path, ErrCorrupt)
	moved, err := ResetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(moved, path+".corrupt-") {
		t.Fatalf("moved to %q", moved)
	}
	if b, err := os.ReadFile(moved); err != nil || string(b) != "garbage" {
		t.Fatalf("moved file: %q, %v", b, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("original still there: %v", err)
	}
	// A fresh start works, and a second reset keeps both old files.
	s := openT(t, path, never)
	s.Apply(sample()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	moved2, err := ResetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if moved2 == moved {
		t.Fatal("second reset overwrote the first moved file")
	}
	if b, _ := os.ReadFile(moved); string(b) != "garbage" {
		t.Fatal("first moved file changed")
	}
	if openT(t, path, never).Len() != 0 {
		t.Fatal("store after ResetFile is not empty")
	}
}

func TestCloseIsIdempotentAndEndsWatchers(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	w := s.Watch("svc/", 10)
	s.Apply(sample()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range w.C() {
	}
	if !errors.Is(w.Err(), watch.ErrClosed) {
		t.Fatalf("watcher err %v, want watch.ErrClosed", w.Err())
	}
	if s.Watchers() != 0 {
		t.Fatalf("%d watchers after Close", s.Watchers())
	}
	// Reads still work; persistence calls report the closed store.
	if _, ok := s.Get("svc/web/1"); !ok {
		t.Fatal("Get after Close lost the entry")
	}
	s.Apply(put("svc/late/1", 1, "n", ""))
	for name, err := range map[string]error{
		"Flush": s.Flush(), "ReserveHLC": s.ReserveHLC(crdt.MakeHLC(1<<40, 0)),
		"SetMeta": s.SetMeta("k", nil), "Reset": s.Reset(),
	} {
		if !errors.Is(err, ErrStoreClosed) {
			t.Errorf("%s after Close: %v, want ErrStoreClosed", name, err)
		}
	}
	if err := New().Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUnpersistableKeyDoesNotBlockFlushing(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(put("", 1, "n", "empty key"), put("svc/ok/1", 1, "n", "x"))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(openT(t, path, never)); len(got) != 1 {
		t.Fatalf("reopened: %v", got)
	}
}

// Concurrent writers, flushes, collections and reservations, then a clean
// close: the file holds exactly the final state. Mostly for -race.
func TestConcurrentUseThenReopen(t *testing.T) {
	path := dataPath(t)
	s := openT(t, path, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				key := fmt.Sprintf("svc/g%d/%d", g, i%50)
				d := put(key, uint64(crdt.MakeHLC(int64(1000+i), 0)), "n", fmt.Sprint(i))
				if i%7 == 0 {
					d.Op = crdt.OpDelete
				}
				s.Apply(d)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if err := s.Flush(); err != nil {
				t.Error(err)
			}
			s.Collect(1100, 50)
			if err := s.ReserveHLC(crdt.HLC(i)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	want := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameState(t, "reopened", snapshot(openT(t, path, never)), want)
}

// TestOpen100KKeys measures how long Open takes to load a data file of
// 100 000 keys. It logs the time and asserts nothing about it.
func TestOpen100KKeys(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow, and its timing means nothing under -race or -short")
	}
	path := dataPath(t)
	s := openT(t, path, never)
	const n = 100_000
	batch := make([]crdt.Delta, 0, 1000)
	for i := range n {
		d := put(fmt.Sprintf("svc/service-%03d/instance-%05d", i%500, i), uint64(crdt.MakeHLC(1_700_000_000_000+int64(i), 0)), "node-12",
			`{"addr":"10.1.2.3:8080","status":"up"}`)
		d.Expiry = 1_700_000_060_000
		batch = append(batch, d)
		if len(batch) == cap(batch) {
			s.Apply(batch...)
			batch = batch[:0]
		}
	}
	start := time.Now()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	flushTook := time.Since(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	s2 := openT(t, path, never)
	took := time.Since(start)
	if s2.Len() != n {
		t.Fatalf("loaded %d keys, want %d", s2.Len(), n)
	}
	t.Logf("100K keys: file %.1f MB, first flush %v, Open %v", float64(fi.Size())/(1<<20), flushTook.Round(time.Millisecond), took.Round(time.Millisecond))
}

// BenchmarkOpen100K times Open of a data file holding 100 000 keys.
func BenchmarkOpen100K(b *testing.B) {
	path := dataPath(b)
	s := openT(b, path, never)
	for i := range 100_000 {
		s.Apply(put(fmt.Sprintf("svc/service-%03d/instance-%05d", i%500, i), uint64(crdt.MakeHLC(1_700_000_000_000+int64(i), 0)), "node-12",
			`{"addr":"10.1.2.3:8080","status":"up"}`))
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(path, Options{Logger: quiet, FlushInterval: never})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEphemeralKeysStayInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Ephemeral: func(k string) bool { return strings.HasPrefix(k, "node/") }})
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(crdt.Delta{Key: "node/a", Stamp: crdt.Stamp{HLC: 1, Node: "a"}, Op: crdt.OpPut})
	if n := s.Unflushed(); n != 0 {
		t.Fatalf("a heartbeat left %d keys to flush", n)
	}
	s.Apply(crdt.Delta{Key: "bl/l/x", Stamp: crdt.Stamp{HLC: 1, Node: "a"}, Op: crdt.OpPut})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.Get("node/a"); ok {
		t.Fatal("ephemeral key was persisted")
	}
	if _, ok := s.Get("bl/l/x"); !ok {
		t.Fatal("durable key lost")
	}
}
