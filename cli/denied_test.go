package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

func TestDeniedMessage(t *testing.T) {
	const sock = "/run/rumor/rumor.sock"
	for _, tc := range []struct {
		name string
		f    socketFacts
		want string
	}{
		{"join the group", socketFacts{mode: 0o660, owner: "rumor", group: "rumor"},
			`cannot connect to /run/rumor/rumor.sock: permission denied (mode 0660, owner rumor, group rumor); join group "rumor" (usermod -aG rumor $USER, then log in again) or run as rumor`},
		{"already in the group", socketFacts{mode: 0o660, owner: "rumor", group: "ops", inGroup: true},
			`cannot connect to /run/rumor/rumor.sock: permission denied (mode 0660, owner rumor, group ops); you are in group "ops", yet the socket refuses you: a directory on the socket's path may not let the group through (chmod g+x it), or run as rumor`},
		{"the directory: join the group", socketFacts{dir: "/run/rumor", mode: 0o750, owner: "rumor", group: "rumor"},
			`cannot connect to /run/rumor/rumor.sock: permission denied (its directory /run/rumor is mode 0750, owner rumor, group rumor); join group "rumor" (usermod -aG rumor $USER, then log in again) or run as rumor`},
		{"the directory is the owner's", socketFacts{dir: "/run/rumor", mode: 0o700, owner: "rumor", group: "rumor"},
			`cannot connect to /run/rumor/rumor.sock: permission denied (its directory /run/rumor is mode 0700, owner rumor, group rumor); the directory is for its owner only: run as rumor, or give it the socket's group and chmod g+x it`},
		{"the directory: already in the group", socketFacts{dir: "/run/rumor", mode: 0o710, owner: "rumor", group: "rumor", inGroup: true},
			`cannot connect to /run/rumor/rumor.sock: permission denied (its directory /run/rumor is mode 0710, owner rumor, group rumor); you are in group "rumor", yet the directory refuses you: a directory on the socket's path may not let the group through (chmod g+x it), or run as rumor`},
		{"owner only", socketFacts{mode: 0o600, owner: "rumor", group: "rumor"},
			`cannot connect to /run/rumor/rumor.sock: permission denied (mode 0600, owner rumor, group rumor); the socket is for its owner only: run as rumor, or give the agent socket_group and socket_mode "0660" in its config`},
		{"cannot stat", socketFacts{err: &os.PathError{Op: "stat", Path: sock, Err: syscall.EACCES}},
			`cannot connect to /run/rumor/rumor.sock: permission denied (and cannot look at it: stat /run/rumor/rumor.sock: permission denied); a directory on its path is closed to you: run as the agent's user, or have the directory opened to the socket's group (chmod g+x, chgrp)`},
	} {
		if got := deniedMessage(sock, tc.f); got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
}

// TestDeniedExitCode checks what every command prints when the socket's
// permissions keep the CLI out: a real refusal when the test is not root,
// else (root connects whatever the mode) the error the client returns for
// one, on a real socket that statSocket looks at.
func TestDeniedExitCode(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnixPerm(sock, rpc.Perm{Mode: 0o660, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	owner, group := strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	var code int
	var msg string
	if os.Geteuid() != 0 {
		if err := os.Chmod(sock, 0); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code = Run([]string{"--socket", sock, "status"}, &stdout, &stderr)
		msg = strings.TrimSuffix(strings.TrimPrefix(stderr.String(), "rumor: "), "\n")
		want := fmt.Sprintf("cannot connect to %s: permission denied (mode 0000, owner %s, group %s); the socket is for its owner only", sock, owner, group)
		if code != ExitError || !strings.HasPrefix(msg, want) {
			t.Fatalf("exit %d, stderr %q; want %d and %q...", code, stderr.String(), ExitError, want)
		}
		// A directory that keeps us from even looking at the socket is
		// the one described.
		dir := filepath.Dir(sock)
		if err := os.Chmod(dir, 0o600); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = os.Chmod(dir, 0o700) }() // so that TempDir's cleanup can remove it
		stderr.Reset()
		code = Run([]string{"--socket", sock, "svc", "ls"}, &stdout, &stderr)
		want = fmt.Sprintf("rumor: cannot connect to %s: permission denied (its directory %s is mode 0600, owner %s, group %s); the directory is for its owner only", sock, dir, owner, group)
		if code != ExitError || !strings.HasPrefix(stderr.String(), want) {
			t.Fatalf("exit %d, stderr %q; want %d and %q...", code, stderr.String(), ExitError, want)
		}
		return
	}
	err = fmt.Errorf("rpc: %w", &rpc.SocketDeniedError{Path: sock, Err: &os.SyscallError{Syscall: "connect", Err: syscall.EACCES}})
	code, msg = exitCode(err)
	want := fmt.Sprintf("cannot connect to %s: permission denied (mode 0660, owner %s, group %s); you are in group %q, yet the socket refuses you", sock, owner, group, group)
	if code != ExitError || !strings.HasPrefix(msg, want) {
		t.Fatalf("exitCode = %d, %q; want %d and %q...", code, msg, ExitError, want)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("the error does not wrap EACCES")
	}
}
