//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// checkUnlocked fails with ErrLocked if another process holds path's file
// lock, as bbolt takes it for every open data file.
func checkUnlocked(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: reset %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s; stop the agent before resetting its state", ErrLocked, path)
		}
		return fmt.Errorf("store: reset %s: lock: %w", path, err)
	}
	return nil // closing f releases the probe's lock
}
