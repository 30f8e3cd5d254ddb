package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

// backupTo writes s's backup to a new file and returns its name.
func backupTo(t *testing.T, s *Store) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	n, err := s.Backup(func(sz int64) (io.Writer, error) { size = sz; return f, nil })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != size {
		t.Fatalf("Backup: %d of %d bytes, %v", n, size, err)
	}
	return path
}

// TestBackupRestoreRoundTrip: a backup taken with unflushed changes holds
// them all; restoring it keeps the old file aside, installs the backup's
// state and keeps the higher clock reservation of the two.
func TestBackupRestoreRoundTrip(t *testing.T) {
	src := openT(t, dataPath(t), never)
	src.Apply(sample()...) // not flushed: Backup must flush first
	if err := src.ReserveHLC(crdt.MakeHLC(5000, 0)); err != nil {
		t.Fatal(err)
	}
	backup := backupTo(t, src)
	want := snapshot(src)

	info, err := VerifyFile(backup)
	if err != nil || info.Entries != len(want) || info.HLC != crdt.MakeHLC(5000, 0) {
		t.Fatalf("VerifyFile = %+v, %v; want %d entries, HLC 5000", info, err, len(want))
	}

	dst := dataPath(t)
	old := openT(t, dst, never)
	old.Apply(put("svc/old/1", 1, "n9", "x"))
	if err := old.ReserveHLC(crdt.MakeHLC(9000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	kept, info, err := RestoreFile(dst, backup)
	if err != nil {
		t.Fatalf("RestoreFile: %v", err)
	}
	if !strings.HasPrefix(kept, dst+".before-restore-") {
		t.Errorf("old file kept as %q", kept)
	}
	if _, err := VerifyFile(kept); err != nil {
		t.Errorf("kept file: %v", err)
	}
	if info.HLC != crdt.MakeHLC(9000, 0) {
		t.Errorf("reservation %v, want the old file's 9000", info.HLC)
	}
	got := openT(t, dst, never)
	sameState(t, "restored", snapshot(got), want)
	if h := got.ReservedHLC(); h != crdt.MakeHLC(9000, 0) {
		t.Errorf("restored file reserves %v, want 9000", h)
	}
}

// TestRestoreRefusesBadBackupAndRunningAgent: a damaged backup and a data
// file held open by a store are refused, and the data file is unchanged.
func TestRestoreRefusesBadBackupAndRunningAgent(t *testing.T) {
	src := openT(t, dataPath(t), never)
	src.Apply(sample()...)
	backup := backupTo(t, src)

	dst := dataPath(t)
	running := openT(t, dst, never)
	running.Apply(put("svc/live/1", 1, "n9", "x"))
	if err := running.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RestoreFile(dst, backup); !errors.Is(err, ErrLocked) {
		t.Fatalf("restore under a running store: %v, want ErrLocked", err)
	}
	if err := running.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"garbage":   []byte(strings.Repeat("not a backup ", 1000)),
		"empty":     nil,
	} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := RestoreFile(dst, p)
		if !errors.Is(err, ErrBackup) || strings.Contains(err.Error(), "reset-state") {
			t.Errorf("%s backup: %v, want ErrBackup without the agent's recovery hint", name, err)
		}
	}
	entries, _ := filepath.Glob(dst + "*")
	if len(entries) != 1 {
		t.Errorf("files after refused restores: %v", entries)
	}
	st := openT(t, dst, never)
	if _, ok := snapshot(st)["svc/live/1"]; !ok || st.Len() != 1 {
		t.Errorf("data file changed by a refused restore: %d keys", st.Len())
	}
}
