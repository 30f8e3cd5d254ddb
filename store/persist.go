package store

// Persistence: why bbolt.
//
// The agent needs a durable map of a few hundred thousand small entries
// that it reads once at start and then writes behind in batches, plus a few
// values (the HLC reservation) that must be on disk before it goes on.
// bbolt (go.etcd.io/bbolt) fits that shape exactly: one file, pure Go (no
// cgo, cross-compiles like the rest of rumor), ACID transactions with a
// single fsync per commit (so a flush of thousands of keys costs one
// fsync), copy-on-write pages that keep the previous consistent tree intact
// after a kill -9 (no recovery step, no write-ahead log to replay), an
// exclusive file lock with a timeout (a second agent on the same data dir
// is refused, not allowed to corrupt it), and read-only opens that let us
// validate a file without touching it. Its weak spots do not hurt here:
// write throughput is bounded by fsync, which group commit amortizes, and
// reads never go to disk because the in-memory map is the read path. An
// LSM store (pebble, badger) would add compactions, many files and far
// more code for write rates rumor does not have; SQLite would need cgo or a
// large transpiled driver; a hand-written append log would need its own
// torn-write detection and compaction.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store/record"
	"github.com/rumor-dev/rumor/wire"
)

// FormatVersion is the data file format this build writes and reads.
// Version 2 keeps every delta's proof (its writer's signed cert); files of
// version 1 hold unsigned deltas and are refused (start with --reset-state
// to resync from peers).
const FormatVersion = 2

// RecoveryHint is what every error about an unusable data file tells the
// operator to do. --reset-state moves the file aside (see ResetFile) and
// resyncs the state from peers.
const RecoveryHint = `move it away or start with "rumor agent --reset-state" (which moves it aside and resyncs from peers)`

// Errors of Open. Each is wrapped with the file name and RecoveryHint (or,
// for ErrLocked, what to do instead); test with errors.Is.
var (
	// ErrCorrupt: the data file cannot be read: not a bbolt file, a
	// truncated or damaged one, not a rumor data file, or a record that
	// does not decode. The file is left untouched.
	ErrCorrupt = errors.New("store: data file is corrupt")
	// ErrVersion: the data file has a format this build does not read
	// (written by a newer, or unknown, rumor). The file is left untouched.
	ErrVersion = errors.New("store: data file has an unsupported format version")
	// ErrLocked: another process (normally another agent) holds the data
	// file open.
	ErrLocked = errors.New("store: data file is locked by another agent")
	// ErrStoreClosed is returned by Flush, ReserveHLC, SetMeta and Reset
	// after Close.
	ErrStoreClosed = errors.New("store: store is closed")
)

// Defaults for Options.
const (
	// DefaultFlushInterval is the default Options.FlushInterval.
	DefaultFlushInterval = 50 * time.Millisecond
	// DefaultLockTimeout is the default Options.LockTimeout.
	DefaultLockTimeout = time.Second
)

// maxFlushBackoff bounds the retry delay after a failed flush.
const maxFlushBackoff = 5 * time.Second

// Options tune a persistent store. The zero value is ready to use.
type Options struct {
	// FlushInterval is how long changed keys may stay unwritten: the first
	// change after a flush starts the clock, and every key changed until
	// it runs out is written in the same transaction (one fsync). Default
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// LockTimeout is how long Open waits for the data file's lock before
	// failing with ErrLocked. Default DefaultLockTimeout.
	LockTimeout time.Duration
	// Logger receives flush failures and load statistics. Default
	// slog.Default().
	Logger *slog.Logger
	// Ephemeral, if set, names keys that are kept in memory only: state
	// that is re-learnt within seconds after a restart (heartbeats) and
	// would otherwise cost a disk commit every flush interval forever.
	Ephemeral func(key string) bool
	// Check, if set, judges the deltas read from the file before the store
	// serves them, one error per delta (nil to keep it): the owner's
	// admission check (signatures, write policy), so that a tampered or
	// forged file, or a backup restored from elsewhere, cannot bring in
	// what no peer would accept. Refused deltas are left out, their keys
	// are rewritten without them at the first flush, and Refused reports
	// how many there were.
	Check func(ds []crdt.Delta) []error
}

// Bucket names and meta keys in the data file.
var (
	bucketMeta    = []byte("meta")    // format version, HLC reservation
	bucketKV      = []byte("kv")      // SetMeta values
	bucketEntries = []byte("entries") // key -> encoded entry
	bucketCerts   = []byte("certs")   // cert number -> the cert (see codec.go)
	keyFormat     = []byte("format")
	keyHLC        = []byte("hlc")
)

// disk is the persistence half of a Store. Its zero value is a store that
// persists nothing (New).
type disk struct {
	path string
	db   *bolt.DB // nil for New
	opts Options
	log  *slog.Logger

	kick chan struct{} // wakes the flusher; cap 1
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the flusher returns

	// flushMu orders flushes (so an older snapshot never overwrites a newer
	// one on disk), Reset and Close.
	flushMu sync.Mutex
	closed  bool // guarded by flushMu

	closeOnce sync.Once
	closeErr  error

	commits atomic.Int64 // flush transactions committed, for tests

	// metaMu guards hlc and meta and orders their synchronous writes.
	metaMu sync.Mutex
	hlc    crdt.HLC
	meta   map[string][]byte

	// onDisk numbers the certs the file holds (or that a flush in progress
	// writes), by signature; deadCerts holds the numbers of those no
	// record uses any more, to delete at the next flush; nextCert is the
	// next number to give. Guarded by the store's mu.
	onDisk    map[[wire.SigSize]byte]uint64
	deadCerts map[uint64]struct{}
	nextCert  uint64
	// refused is how many deltas Options.Check refused at Open.
	refused int
}

// Open opens (or creates, mode 0600) the data file at path and returns a
// store holding every entry in it. The in-memory map stays the read path;
// changes are written behind (see Options.FlushInterval, Flush), and Close
// must be called to write the last changes and release the file.
//
// Open never modifies or removes a file it cannot fully read: it first opens
// the file read-only and decodes every entry, and only then reopens it for
// writing. A damaged file, a truncated one, a file that is not a rumor data
// file and any record that does not decode strictly fail with an error
// wrapping ErrCorrupt; a file of another format version fails with
// ErrVersion; both name the file and RecoveryHint. If another agent holds
// the file, Open fails with ErrLocked after Options.LockTimeout instead of
// waiting.
func Open(path string, opts Options) (*Store, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("path", path)
	start := time.Now()

	var st loaded
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Size() > 0:
		if st, err = loadFile(path, opts.LockTimeout); err != nil {
			return nil, err
		}
		st.check(opts.Check, log)
	case err == nil:
		log.Warn("store: data file is empty, starting with an empty state")
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
	default:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, openError(path, err, opts.LockTimeout)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return initBuckets(path, tx) }); err != nil {
		_ = db.Close()
		return nil, err
	}

	s := New()
	if st.entries != nil {
		s.entries = st.entries
	}
	s.dirty = make(map[string]struct{})
	s.ephemeral = opts.Ephemeral
	s.disk = disk{
		path: path, db: db, opts: opts, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		hlc: st.hlc, meta: st.meta, refused: st.refused,
		onDisk: st.certs, deadCerts: make(map[uint64]struct{}), nextCert: st.nextCert,
	}
	if s.onDisk == nil {
		s.onDisk = make(map[[wire.SigSize]byte]uint64)
	}
	s.nextCert = max(s.nextCert, 1)
	for _, k := range st.rewrite {
		s.dirty[k] = struct{}{}
	}
	s.collectCertsLocked()
	if len(s.dirty) > 0 || len(s.deadCerts) > 0 {
		s.kickFlusher()
	}
	go s.flusher()
	log.Info("store: opened", "entries", s.entries.Len(), "took", time.Since(start).Round(time.Microsecond))
	return s, nil
}

// loaded is what loadFile read.
type loaded struct {
	entries  *index
	hlc      crdt.HLC
	meta     map[string][]byte
	certs    map[[wire.SigSize]byte]uint64 // the certs the file holds, numbered
	nextCert uint64                        // above every number in use
	refused  int                           // deltas Options.Check refused
	rewrite  []string                      // keys to write again without them
}

// checkBatch is how many deltas Options.Check judges at a time.
const checkBatch = 4096

// check runs Options.Check over every loaded delta and leaves out the ones
// it refuses.
func (st *loaded) check(check func([]crdt.Delta) []error, log *slog.Logger) {
	if check == nil || st.entries == nil {
		return
	}
	var ds []crdt.Delta
	judge := func() {
		if len(ds) == 0 {
			return
		}
		errs := check(ds)
		bad := make(map[string][]crdt.Delta)
		for i, err := range errs {
			if err != nil {
				if st.refused < 3 {
					log.Warn("store: refusing a record of the data file", "key", ds[i].Key, "err", err)
				}
				st.refused++
				bad[ds[i].Key] = append(bad[ds[i].Key], ds[i])
			}
		}
		for key, out := range bad {
			e, _ := st.entries.Get(key)
			keep := make([]crdt.Delta, 0, len(e.Deltas))
			for _, d := range e.Deltas {
				if !slices.ContainsFunc(out, d.Equal) {
					keep = append(keep, d)
				}
			}
			if len(keep) == 0 {
				st.entries.Delete(key)
			} else {
				st.entries.Put(key, crdt.Entry{Key: key, Deltas: keep})
			}
			st.rewrite = append(st.rewrite, key)
		}
		ds = ds[:0]
	}
	for _, e := range st.entries.List("") {
		ds = append(ds, e.Deltas...)
		if len(ds) >= checkBatch {
			judge()
		}
	}
	judge()
	if st.refused > 0 {
		log.Warn("store: records of the data file refused by the admission check (forged, unsigned or against the write policy); they are dropped", "refused", st.refused, "keys", len(st.rewrite))
	}
}

// Refused returns how many deltas of the data file Options.Check refused
// when the store was opened.
func (s *Store) Refused() int { return s.refused }

// loadFile opens path read-only and reads everything in it, verifying as it
// goes. A read-only bbolt handle never writes, so a file that fails here is
// left exactly as it was.
func loadFile(path string, lockTimeout time.Duration) (st loaded, err error) {
	// A damaged file can make bbolt read outside the mapped file (SIGBUS)
	// or trip one of its own panics. Turn both into ErrCorrupt.
	defer func() {
		if r := recover(); r != nil {
			err = corruptError(path, fmt.Errorf("reading it failed: %v", r))
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return st, openError(path, err, lockTimeout)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: close %s after loading: %w", path, cerr)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		// A truncated file still has valid meta pages; its page index then
		// points past the end of the file. Check before reading any page.
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("store: open %s: %w", path, err)
		}
		if fi.Size() < tx.Size() {
			return corruptError(path, fmt.Errorf("truncated: %d bytes, its page index needs %d", fi.Size(), tx.Size()))
		}
		if empty(tx) {
			return nil // created, crashed before the first transaction
		}
		if err := checkFormat(path, tx); err != nil {
			return err
		}
		mb := tx.Bucket(bucketMeta)
		if v := mb.Get(keyHLC); v != nil {
			if len(v) != 8 {
				return corruptError(path, fmt.Errorf("HLC reservation of %d bytes", len(v)))
			}
			st.hlc = crdt.HLC(binary.BigEndian.Uint64(v))
		}
		st.meta = make(map[string][]byte)
		if kb := tx.Bucket(bucketKV); kb != nil {
			if err := kb.ForEach(func(k, v []byte) error {
				if v == nil {
					return corruptError(path, fmt.Errorf("nested bucket %q in %s", k, bucketKV))
				}
				st.meta[string(k)] = slices.Clone(v)
				return nil
			}); err != nil {
				return err
			}
		}
		certs := make(map[uint64]*crdt.Cert)
		st.certs = make(map[[wire.SigSize]byte]uint64)
		if cb := tx.Bucket(bucketCerts); cb != nil {
			if err := cb.ForEach(func(k, v []byte) error {
				n, c, err := record.DecodeCert(k, v)
				if err != nil {
					return corruptError(path, err)
				}
				if _, dup := st.certs[c.Sig]; dup {
					return corruptError(path, fmt.Errorf("cert %d repeats another", n))
				}
				certs[n] = c
				st.certs[c.Sig] = n
				st.nextCert = max(st.nextCert, n+1)
				return nil
			}); err != nil {
				return err
			}
		}
		eb := tx.Bucket(bucketEntries)
		if eb == nil {
			return corruptError(path, fmt.Errorf("no %s bucket", bucketEntries))
		}
		st.entries = newIndex(eb.Stats().KeyN)
		c := eb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				return corruptError(path, fmt.Errorf("nested bucket %q in %s", k, bucketEntries))
			}
			key := string(k)
			e, err := record.DecodeEntry(key, v, certs)
			if err != nil {
				return corruptError(path, err)
			}
			st.entries.Put(key, e)
		}
		return nil
	})
	return st, err
}

// empty reports whether the file has no buckets at all.
func empty(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k == nil
}

// checkFormat verifies that tx's file is a rumor data file of FormatVersion.
func checkFormat(path string, tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMeta)
	var v []byte
	if mb != nil {
		v = mb.Get(keyFormat)
	}
	switch {
	case v == nil:
		return corruptError(path, errors.New("not a rumor data file (no format version)"))
	case len(v) != 8:
		return corruptError(path, fmt.Errorf("format version of %d bytes", len(v)))
	}
	got := binary.BigEndian.Uint64(v)
	if got == 1 {
		return fmt.Errorf("%w: %s has format 1, written before every write was signed by its writer; this build reads %d and cannot verify who wrote those records; %s", ErrVersion, path, FormatVersion, RecoveryHint)
	}
	if got != FormatVersion {
		return fmt.Errorf("%w: %s has format %d, this build reads %d; %s", ErrVersion, path, got, FormatVersion, RecoveryHint)
	}
	return nil
}

// initBuckets creates the buckets and format version of a new file, or
// checks them on an existing one.
func initBuckets(path string, tx *bolt.Tx) error {
	if empty(tx) {
		mb, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: initialize %s: %w", path, err)
		}
		if err := mb.Put(keyFormat, binary.BigEndian.AppendUint64(nil, FormatVersion)); err != nil {
			return fmt.Errorf("store: initialize %s: %w", path, err)
		}
	} else if err := checkFormat(path, tx); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketKV, bucketEntries, bucketCerts} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("store: initialize %s: %w", path, err)
		}
	}
	return nil
}

// corruptError wraps ErrCorrupt with the file, the cause and the recovery.
func corruptError(path string, cause error) error {
	return fmt.Errorf("%w: %s: %v; %s", ErrCorrupt, path, cause, RecoveryHint)
}

// openError classifies an error of bolt.Open.
func openError(path string, err error, lockTimeout time.Duration) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s (waited %s); stop the other agent or give this one another data dir", ErrLocked, path, lockTimeout)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	// Invalid meta pages, checksum or bbolt version mismatch, a short read:
	// the file is not a readable bbolt file.
	return corruptError(path, err)
}

// flusher writes dirty keys behind. A change wakes it; it then waits one
// FlushInterval so that every change in the window joins the same
// transaction, and flushes. A failed flush keeps the keys dirty and is
// retried with backoff.
func (s *Store) flusher() {
	defer close(s.done)
	delay := s.opts.FlushInterval
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		timer.Reset(delay)
		select {
		case <-s.stop:
			timer.Stop()
			return // Close flushes
		case <-timer.C:
		}
		if err := s.Flush(); err != nil {
			if errors.Is(err, ErrStoreClosed) {
				return
			}
			delay = min(2*delay, maxFlushBackoff)
			s.log.Error("store: flush failed, will retry", "err", err, "retry_in", delay)
			s.kickFlusher()
			continue
		}
		delay = s.opts.FlushInterval
	}
}

// kickFlusher wakes the flusher without blocking.
func (s *Store) kickFlusher() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// pending is one key to write (or delete, if absent) in a flush.
type pending struct {
	key   string
	entry crdt.Entry
	ok    bool
}

// Flush writes every changed key to the data file now, in one transaction,
// and returns when it is durable. It is a no-op for a store made by New.
func (s *Store) Flush() error {
	if s.db == nil {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	return s.flushLocked()
}

// flushLocked is Flush with flushMu held.
func (s *Store) flushLocked() error {
	s.mu.Lock()
	if len(s.dirty) == 0 && len(s.deadCerts) == 0 {
		s.mu.Unlock()
		return nil
	}
	dirty, dead := s.dirty, s.deadCerts
	s.dirty, s.deadCerts = make(map[string]struct{}), make(map[uint64]struct{})
	s.flushing = len(dirty)
	batch := make([]pending, 0, len(dirty))
	numbers := make(map[*crdt.Cert]uint64) // of every cert the batch's records name
	var certs []*crdt.Cert                 // to write: used by a record and not on disk yet
	for k := range dirty {
		// Entries are values whose slices are never modified, so the
		// snapshot stays valid after the lock is released.
		e, ok := s.entries.Get(k)
		batch = append(batch, pending{key: k, entry: e, ok: ok})
		for _, d := range e.Deltas {
			c := d.Proof.Cert
			if c == nil {
				continue
			}
			if _, seen := numbers[c]; seen {
				continue
			}
			n, on := s.onDisk[c.Sig]
			if !on {
				n = s.nextCert
				s.nextCert++
				s.onDisk[c.Sig] = n
				certs = append(certs, c)
			}
			numbers[c] = n
		}
	}
	s.mu.Unlock()

	// bbolt inserts sorted keys fastest.
	slices.SortFunc(batch, func(a, b pending) int { return strings.Compare(a.key, b.key) })
	err := s.db.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCerts)
		for n := range dead {
			if err := cb.Delete(record.CertKey(n)); err != nil {
				return err
			}
		}
		for _, c := range certs {
			if err := cb.Put(record.CertKey(numbers[c]), record.EncodeCert(c)); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketEntries)
		for _, p := range batch {
			if len(p.key) == 0 || len(p.key) > bolt.MaxKeySize {
				s.log.Warn("store: key cannot be persisted, keeping it in memory only", "key_bytes", len(p.key))
				continue
			}
			if !p.ok {
				if err := b.Delete([]byte(p.key)); err != nil {
					return err
				}
				continue
			}
			v, err := record.EncodeEntry(p.entry, func(c *crdt.Cert) uint64 { return numbers[c] })
			if err != nil {
				return err
			}
			if err := b.Put([]byte(p.key), v); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Lock()
	s.flushing = 0
	s.mu.Unlock()
	if err != nil {
		// Keep the keys dirty and the certs to write or delete; later
		// changes to them are already in s.dirty.
		s.mu.Lock()
		if s.dirty != nil {
			for k := range dirty {
				s.dirty[k] = struct{}{}
			}
			for _, c := range certs {
				delete(s.onDisk, c.Sig)
			}
			for n := range dead {
				s.deadCerts[n] = struct{}{}
			}
		}
		s.mu.Unlock()
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return ErrStoreClosed
		}
		return fmt.Errorf("store: flush %d keys to %s: %w", len(batch), s.path, err)
	}
	s.commits.Add(1)
	return nil
}

// Unflushed returns how many changed keys are not yet durable on disk (0
// for an in-memory store).
func (s *Store) Unflushed() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.dirty) + s.flushing
}

// Close writes the last changes, stops the flusher, closes the data file
// and ends every watcher with watch.ErrClosed. Reads keep working on the
// in-memory map afterwards, and Apply still merges in memory, but nothing
// more is persisted. Close is idempotent; later calls return the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.db != nil {
			close(s.stop)
			<-s.done
			s.flushMu.Lock()
			err := s.flushLocked()
			s.stopPersisting()
			if cerr := s.db.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("store: close %s: %w", s.path, cerr)
			}
			s.flushMu.Unlock()
			s.closeErr = err
		}
		s.watchers.CloseAll()
	})
	return s.closeErr
}

// stopPersisting marks the store closed. Called with flushMu held.
func (s *Store) stopPersisting() {
	s.closed = true
	s.mu.Lock()
	s.dirty = nil
	s.mu.Unlock()
}

// closeWithoutFlush simulates kill -9 for tests: it stops the flusher and
// closes the file without writing pending changes.
func (s *Store) closeWithoutFlush() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.flushMu.Lock()
		s.stopPersisting()
		err = s.db.Close()
		s.flushMu.Unlock()
		s.closeErr = ErrStoreClosed
	})
	return err
}

// ReserveHLC durably records h as the highest HLC the agent may stamp up
// to, and returns once it is on disk (fsync). The reservation never goes
// down: a lower h than the current one is a no-op. After a crash the agent
// restores its clock to ReservedHLC, so no stamp is ever issued twice, even
// for writes that were not flushed. For a store made by New it is kept in
// memory only.
func (s *Store) ReserveHLC(h crdt.HLC) error {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if h <= s.hlc {
		return nil
	}
	if err := s.putMeta(bucketMeta, keyHLC, binary.BigEndian.AppendUint64(nil, uint64(h))); err != nil {
		return fmt.Errorf("store: reserve HLC %v: %w", h, err)
	}
	s.hlc = h
	return nil
}

// ReservedHLC returns the persisted HLC reservation, 0 if none was made.
func (s *Store) ReservedHLC() crdt.HLC {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return s.hlc
}

// SetMeta durably stores a small value under key (for example the time the
// agent last ran) and returns once it is on disk. Meta values survive Reset.
// For a store made by New they are kept in memory only.
func (s *Store) SetMeta(key string, val []byte) error {
	if key == "" || len(key) > bolt.MaxKeySize {
		return fmt.Errorf("store: set meta: key of %d bytes", len(key))
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	val = slices.Clone(val)
	if val == nil {
		val = []byte{}
	}
	if err := s.putMeta(bucketKV, []byte(key), val); err != nil {
		return fmt.Errorf("store: set meta %q: %w", key, err)
	}
	if s.meta == nil {
		s.meta = make(map[string][]byte)
	}
	s.meta[key] = val
	return nil
}

// Meta returns a copy of the value SetMeta stored under key.
func (s *Store) Meta(key string) ([]byte, bool) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	v, ok := s.meta[key]
	return slices.Clone(v), ok
}

// putMeta writes one value in its own transaction. Called with metaMu held.
func (s *Store) putMeta(bucket, key, val []byte) error {
	if s.db == nil {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, val) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrStoreClosed
	}
	return err
}

// Reset removes every entry, from memory and from the data file, and keeps
// the metadata (HLC reservation, SetMeta values). The daemon calls it
// before it resyncs the whole state from a peer: when --reset-state is
// given, or when the node was away longer than the tombstone horizon and so
// must not merge its old state (see Collect). Reset fires no watch events.
func (s *Store) Reset() error {
	if s.db != nil {
		s.flushMu.Lock()
		defer s.flushMu.Unlock()
		if s.closed {
			return ErrStoreClosed
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketEntries, bucketCerts} {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("store: reset %s: %w", s.path, err)
		}
		clear(s.dirty)
		clear(s.onDisk)
		clear(s.deadCerts)
	}
	s.entries = newIndex(0)
	s.watchers.Forget() // no events tell what went: every cursor is stale
	return nil
}

// ResetFile moves the data file at path aside, to path+".corrupt-<unix
// seconds>" (with a numeric suffix if that exists), so that the next Open
// starts empty and the operator keeps the old file for inspection: the
// state is never wiped silently. It returns the new name. It refuses a file
// that another process holds open as a data file (ErrLocked). A missing
// file is not an error: movedTo is then "".
func ResetFile(path string) (movedTo string, err error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("store: reset %s: %w", path, err)
	}
	if err := checkUnlocked(path); err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
	for i := 0; ; i++ {
		movedTo = base
		if i > 0 {
			movedTo = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(movedTo); errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err := os.Rename(path, movedTo); err != nil {
		return "", fmt.Errorf("store: reset %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return movedTo, nil
}

// collectCertsLocked finds the certs on disk that no entry uses any more
// and marks them for deletion at the next flush. Called with s.mu held (or
// before the store is shared).
func (s *Store) collectCertsLocked() {
	if len(s.onDisk) == 0 {
		return
	}
	used := make(map[[wire.SigSize]byte]struct{}, len(s.onDisk))
	x := s.entries
	for i := range x.n {
		if c := x.at(uint32(i)).cert; c != nil {
			used[c.Sig] = struct{}{}
		}
	}
	for _, e := range x.sets {
		for _, d := range e.Deltas {
			if c := d.Proof.Cert; c != nil {
				used[c.Sig] = struct{}{}
			}
		}
	}
	for sig, n := range s.onDisk {
		if _, ok := used[sig]; !ok {
			delete(s.onDisk, sig)
			s.deadCerts[n] = struct{}{}
		}
	}
}

// syncDir makes a rename in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
