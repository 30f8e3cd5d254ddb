package cli

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// socketFacts is what statSocket learns of a socket the system refused us:
// its mode, its owner and group (names where the host knows them), and
// whether this process is already in that group.
type socketFacts struct {
	mode    fs.FileMode
	owner   string
	group   string
	inGroup bool
	err     error // stat's error; the other fields are then empty
}

// statSocket looks at the socket at path for deniedMessage.
func statSocket(path string) socketFacts {
	fi, err := os.Stat(path)
	if err != nil {
		return socketFacts{err: err}
	}
	f := socketFacts{mode: fi.Mode().Perm(), owner: "?", group: "?"}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return f
	}
	uid, gid := strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	f.owner, f.group = uid, gid
	if u, err := user.LookupId(uid); err == nil {
		f.owner = u.Username
	}
	if g, err := user.LookupGroupId(gid); err == nil {
		f.group = g.Name
	}
	groups, _ := os.Getgroups()
	f.inGroup = os.Getegid() == int(st.Gid) || slices.Contains(groups, int(st.Gid))
	return f
}

// deniedMessage explains why the socket at path refused us, from what
// statSocket found, and what to do about it.
func deniedMessage(path string, f socketFacts) string {
	head := "cannot connect to " + path + ": permission denied"
	if f.err != nil {
		return fmt.Sprintf("%s (and cannot look at it: %v); a directory on its path is closed to you: run as the agent's user, or have the directory opened to the socket's group (chmod g+x, chgrp)", head, f.err)
	}
	head = fmt.Sprintf("%s (mode %04o, owner %s, group %s)", head, uint32(f.mode), f.owner, f.group)
	switch {
	case f.mode&0o020 == 0:
		return fmt.Sprintf("%s; the socket is for its owner only: run as %s, or give the agent socket_group and socket_mode \"0660\" in its config", head, f.owner)
	case f.inGroup:
		return fmt.Sprintf("%s; you are in group %q: a directory on the socket's path may not let the group through (chmod g+x it), or run as %s", head, f.group, f.owner)
	default:
		return fmt.Sprintf("%s; join group %q (usermod -aG %s $USER, then log in again) or run as %s", head, f.group, f.group, f.owner)
	}
}
