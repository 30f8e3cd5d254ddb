package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/rumor-dev/rumor/crdt"
)

// ErrBackup marks a file that is not a usable backup: not a bbolt file, a
// damaged or truncated one, not a rumor data file, a record that does not
// decode, or a format this build does not read. Test with errors.Is.
var ErrBackup = errors.New("store: not a usable backup")

// Backup writes a consistent copy of the data file to w: it first flushes
// every change made so far, then copies the file as of one read
// transaction (bbolt's Tx.WriteTo), so writes that arrive meanwhile are
// either wholly in the copy or not at all. begin is called once, before
// anything is written, with the copy's exact size; it returns the writer
// to use (so a caller can announce the length). It fails for a store made
// by New.
func (s *Store) Backup(begin func(size int64) (io.Writer, error)) (int64, error) {
	if s.db == nil {
		return 0, errors.New("store: backup: this store is not persistent")
	}
	if err := s.Flush(); err != nil {
		return 0, fmt.Errorf("store: backup: flush: %w", err)
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		w, err := begin(tx.Size())
		if err != nil {
			return err
		}
		n, err = tx.WriteTo(w)
		return err
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return n, ErrStoreClosed
	}
	return n, err
}

// BackupInfo describes a verified backup (or data file).
type BackupInfo struct {
	// Entries is the number of keys, tombstones included.
	Entries int
	// HLC is the clock reservation recorded in the file.
	HLC crdt.HLC
	// Meta holds the file's SetMeta values.
	Meta map[string][]byte
}

// VerifyFile reads the data file or backup at path read-only, decoding
// every record as Open would, and describes it. It never modifies the
// file. A file that Open would refuse fails with an error wrapping
// ErrBackup (and ErrCorrupt or ErrVersion, as Open would say); a file
// locked by a running agent fails with ErrLocked.
func VerifyFile(path string) (BackupInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return BackupInfo{}, fmt.Errorf("%w: %s is not a regular file", ErrBackup, path)
	}
	if fi.Size() == 0 {
		return BackupInfo{}, fmt.Errorf("%w: %s is empty", ErrBackup, path)
	}
	st, err := loadFile(path, DefaultLockTimeout)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return BackupInfo{}, err
		}
		// Open's errors end with the recovery for an agent's own file,
		// which does not apply to a backup.
		msg := strings.TrimSuffix(err.Error(), "; "+RecoveryHint)
		return BackupInfo{}, &backupError{msg: msg, err: err}
	}
	if st.entries == nil {
		return BackupInfo{}, fmt.Errorf("%w: %s holds no rumor state (a data file created but never written)", ErrBackup, path)
	}
	return BackupInfo{Entries: st.entries.Len(), HLC: st.hlc, Meta: st.meta}, nil
}

// backupError wraps a load error as ErrBackup, keeping what it wraps.
type backupError struct {
	msg string
	err error
}

func (e *backupError) Error() string   { return e.msg }
func (e *backupError) Unwrap() []error { return []error{ErrBackup, e.err} }

// RestoreFile installs the backup at backup as the data file at path, for an
// agent that is not running. It verifies the backup fully first (see
// VerifyFile) and changes nothing if it is unusable. It refuses, with
// ErrLocked, while a process holds the data file (a running agent). The
// existing data file, if any, is kept as path+".before-restore-<unix
// seconds>" and its name returned. The restored file's clock reservation
// is raised to the old file's, so the agent never reissues a stamp it
// issued after the backup was taken. The backup file is not modified.
func RestoreFile(path, backup string) (keptAs string, info BackupInfo, err error) {
	info, err = VerifyFile(backup)
	if err != nil {
		return "", info, err
	}
	reserve := info.HLC
	if _, err := os.Lstat(path); err == nil {
		if err := checkUnlocked(path); err != nil {
			return "", info, err
		}
		// The old file may be the reason for the restore (corrupt): its
		// reservation is used if it can be read.
		if old, err := loadFile(path, DefaultLockTimeout); err == nil && old.hlc > reserve {
			reserve = old.hlc
		} else if errors.Is(err, ErrLocked) {
			return "", info, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", info, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", info, fmt.Errorf("store: restore: create data dir: %w", err)
	}

	tmp := path + ".restore-tmp"
	_ = os.Remove(tmp) // left over from a failed restore
	if err := copyFile(tmp, backup); err != nil {
		_ = os.Remove(tmp)
		return "", info, err
	}
	if err := setReservation(tmp, reserve); err != nil {
		_ = os.Remove(tmp)
		return "", info, err
	}
	info.HLC = reserve

	if _, err := os.Lstat(path); err == nil {
		if err := checkUnlocked(path); err != nil { // an agent started meanwhile
			_ = os.Remove(tmp)
			return "", info, err
		}
		keptAs = fmt.Sprintf("%s.before-restore-%d", path, time.Now().Unix())
		for i := 1; ; i++ {
			if _, err := os.Lstat(keptAs); errors.Is(err, fs.ErrNotExist) {
				break
			}
			keptAs = fmt.Sprintf("%s.before-restore-%d-%d", path, time.Now().Unix(), i)
		}
		if err := os.Rename(path, keptAs); err != nil {
			_ = os.Remove(tmp)
			return "", info, fmt.Errorf("store: restore: keep the old data file: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return keptAs, info, fmt.Errorf("store: restore: install %s: %w (the old data file is %s)", path, err, keptAs)
	}
	syncDir(filepath.Dir(path))
	return keptAs, info, nil
}

// copyFile copies src to a new file dst (mode 0600) and syncs it.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: restore: copy %s: %w", src, err)
	}
	return nil
}

// setReservation raises the clock reservation in the data file at path to
// at least h.
func setReservation(path string, h crdt.HLC) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		return openError(path, err, DefaultLockTimeout)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			return corruptError(path, errors.New("no meta bucket"))
		}
		if v := mb.Get(keyHLC); len(v) == 8 && crdt.HLC(binary.BigEndian.Uint64(v)) >= h {
			return nil
		}
		return mb.Put(keyHLC, binary.BigEndian.AppendUint64(nil, uint64(h)))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: restore: set clock reservation: %w", err)
	}
	return nil
}
