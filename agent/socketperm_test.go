package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rumor-dev/rumor/config"
)

// TestSocketGroupAndMode: socket_group and socket_mode reach the socket,
// and the socket's directory, which the agent creates, lets the group
// through. The group is a supplementary group of the test's user, or, as
// root, an unused gid (root may give a file any group).
func TestSocketGroupAndMode(t *testing.T) {
	gid := -1
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g != os.Getegid() {
			gid = g
			break
		}
	}
	if gid < 0 && os.Geteuid() == 0 {
		gid = 54321
	}
	if gid < 0 {
		t.Skip("this user is in its primary group only and is not root, so it cannot give the socket another group (the test needs a supplementary group)")
	}
	cfg := config.LocalConfig(filepath.Join(t.TempDir(), "data"))
	runDir := filepath.Join(t.TempDir(), "run")
	cfg.Socket = filepath.Join(runDir, "rumor.sock")
	cfg.SocketGroup = strconv.Itoa(gid)
	cfg.SocketMode = "0660"
	runAgentAPI(t, cfg)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{cfg.Socket, 0o660}, {runDir, 0o710}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
			t.Errorf("%s: mode %v, group %d; want %v, group %d", c.path, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, c.mode, gid)
		}
	}
}

func TestSocketGroupUnknown(t *testing.T) {
	cfg := config.LocalConfig(filepath.Join(t.TempDir(), "data"))
	cfg.Socket = filepath.Join(t.TempDir(), "rumor.sock")
	cfg.SocketGroup = "no-such-group-rumor-test"
	_, err := New(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "config: socket_group: ") || !strings.Contains(err.Error(), `no group "no-such-group-rumor-test"`) {
		t.Fatalf("New with an unknown socket_group: %v, want an error naming socket_group", err)
	}
}
