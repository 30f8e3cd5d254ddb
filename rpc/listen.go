package rpc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// probeTimeout bounds the dial ListenUnix makes to learn whether an existing
// socket file is live.
const probeTimeout = time.Second

// ListenUnix listens on the Unix socket at path for a Server. It creates the
// parent directory (mode 0700) if it is missing, replaces a stale socket file
// left by an agent that died, refuses if an agent answers on path, and makes
// the socket mode 0600. Closing the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("rpc: create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("rpc: chmod socket %s: %w", path, err)
	}
	return ln, nil
}

// removeStale removes the socket file at path if nothing answers on it. It
// leaves a live socket and anything that is not a socket alone, and says so.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rpc: check socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("rpc: %s exists and is not a socket; remove it or choose another path", path)
	}
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		_ = conn.Close()
		return &socketInUseError{path: path}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("rpc: probe socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rpc: remove stale socket %s: %w", path, err)
	}
	return nil
}

// ErrSocketInUse is matched (errors.Is) by the error ListenUnix returns when
// an agent already answers on the socket path.
var ErrSocketInUse = errors.New("rpc: socket in use")

type socketInUseError struct{ path string }

func (e *socketInUseError) Error() string {
	return "another agent is already serving on " + e.path
}

func (e *socketInUseError) Is(target error) bool { return target == ErrSocketInUse }
