package rpc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// probeTimeout bounds the dial ListenUnix makes to learn whether an existing
// socket file is live.
const probeTimeout = time.Second

// ListenUnix listens on the Unix socket at path for a Server. It creates the
// parent directory (mode 0700) if it is missing, replaces a stale socket file
// left by an agent that died, and refuses if an agent answers on path. The
// socket is mode 0600 from the moment it appears at path: it is bound inside
// a fresh private (0700) directory next to path, made 0600 there, and then
// renamed into place, so there is no window in which other users could
// connect, whatever the directory (a shared one such as /run too). Closing
// the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rpc: create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".rs")
	if err != nil {
		return nil, fmt.Errorf("rpc: create socket in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) >= maxSocketPath {
		return nil, fmt.Errorf("rpc: socket path %s is too long for a Unix socket (keep it under %d bytes)", path, maxSocketPath-len(tmp)+len(path))
	}
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the file moves; unixListener removes it
	fail := func(err error) (net.Listener, error) {
		_ = ul.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(fmt.Errorf("rpc: chmod socket %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("rpc: move socket into place at %s: %w", path, err))
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

// maxSocketPath is the longest Unix socket path the kernel takes, with a
// margin (sun_path is 108 bytes on Linux, 104 on the BSDs).
const maxSocketPath = 104

// unixListener removes its socket file once, when closed.
type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
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
