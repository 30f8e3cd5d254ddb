package httpapi

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

	"github.com/rumor-dev/rumor/rpc"
)

// probeTimeout bounds the dial ListenUnix makes to learn whether an existing
// socket file is live.
const probeTimeout = time.Second

// ListenUnix listens on the Unix socket at path for a Server, mode 0600 and
// owned by the process's user and group: ListenUnixPerm with rpc.DefaultPerm.
func ListenUnix(path string) (net.Listener, error) {
	return ListenUnixPerm(path, rpc.DefaultPerm)
}

// ListenUnixPerm listens on the Unix socket at path for a Server, with the
// mode and group of perm. It creates the parent directory if it is missing
// (mode 0700, or 0710 and in perm's group when perm lets the group connect,
// so that the group can reach the socket), replaces a stale socket file left
// by an agent that died, and refuses if an agent answers on path. The socket
// has perm from the moment it appears at path: it is bound inside a fresh
// private (0700) directory next to path, given its group and mode there, and
// then renamed into place, so there is no window in which others could
// connect, whatever the directory (a shared one such as /run too). Closing
// the listener removes the socket file. A Mode with any bit for others, or
// beyond the permission bits, is refused.
func ListenUnixPerm(path string, perm rpc.Perm) (net.Listener, error) {
	if perm.Mode&^fs.FileMode(0o770) != 0 {
		return nil, fmt.Errorf("rpc: socket mode %04o: only owner and group bits are allowed (the socket must not be open to others)", uint32(perm.Mode))
	}
	dir := filepath.Dir(path)
	if err := makeSocketDir(dir, perm); err != nil {
		return nil, err
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
	// Group first, then mode: until the rename only this process can reach
	// tmp (its directory is 0700), so neither order opens a window, but
	// chown may clear bits on some systems and chmod last settles them.
	if perm.GID >= 0 {
		if err := os.Lchown(tmp, -1, perm.GID); err != nil {
			return fail(fmt.Errorf("rpc: give socket %s group %d: %w", path, perm.GID, err))
		}
	}
	if err := os.Chmod(tmp, perm.Mode); err != nil {
		return fail(fmt.Errorf("rpc: chmod socket %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("rpc: move socket into place at %s: %w", path, err))
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

// makeSocketDir creates dir, the socket's directory, if it is missing: mode
// 0700, or 0710 in perm's group when perm lets the group connect (the group
// may then pass through it, not list it). An existing directory is left as
// it is.
func makeSocketDir(dir string, perm rpc.Perm) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("rpc: create socket directory: %w", err)
	}
	if !perm.GroupAccess() {
		return nil
	}
	if perm.GID >= 0 {
		if err := os.Lchown(dir, -1, perm.GID); err != nil {
			return fmt.Errorf("rpc: give socket directory %s group %d: %w", dir, perm.GID, err)
		}
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("rpc: chmod socket directory %s: %w", dir, err)
	}
	return nil
}

// GroupCanReach reports whether the socket's group can pass through dir,
// the directory that holds it: dir has the group's search bit and is in
// group gid (-1: the process's group), or has the search bit for others.
func GroupCanReach(dir string, gid int) (bool, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	if fi.Mode().Perm()&0o001 != 0 {
		return true, nil
	}
	if fi.Mode().Perm()&0o010 == 0 {
		return false, nil
	}
	if gid < 0 {
		gid = os.Getegid()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == gid, nil
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
