package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// socketFacts is what statSocket learns of a socket the system refused us:
// the mode, owner and group (names where the host knows them) of the
// socket, or, when we may not even look at the socket, of the directory on
// its path that keeps us out; and whether this process is in that group.
type socketFacts struct {
	dir     string // "" for the socket itself, else the directory described
	mode    fs.FileMode
	owner   string
	group   string
	inGroup bool
	err     error // the socket's stat error when nothing could be looked at
}

// statSocket looks at the socket at path for deniedMessage, or at the
// innermost directory on its path we may look at: the one whose
// permissions keep us from the rest.
func statSocket(path string) socketFacts {
	fi, err := os.Stat(path)
	dir := ""
	for p := path; err != nil && errors.Is(err, fs.ErrPermission); {
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
		var perr error
		if fi, perr = os.Stat(p); perr == nil {
			dir, err = p, nil
		}
	}
	if err != nil {
		return socketFacts{err: err}
	}
	f := socketFacts{dir: dir, mode: fi.Mode().Perm(), owner: "?", group: "?"}
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
	what, groupBit := "the socket", fs.FileMode(0o020)
	if f.dir == "" {
		head = fmt.Sprintf("%s (mode %04o, owner %s, group %s)", head, uint32(f.mode), f.owner, f.group)
	} else {
		head = fmt.Sprintf("%s (its directory %s is mode %04o, owner %s, group %s)", head, f.dir, uint32(f.mode), f.owner, f.group)
		what, groupBit = "the directory", 0o010
	}
	switch {
	case f.mode&groupBit == 0 && f.dir == "":
		return fmt.Sprintf("%s; the socket is for its owner only: run as %s, or give the agent socket_group and socket_mode \"0660\" in its config", head, f.owner)
	case f.mode&groupBit == 0:
		return fmt.Sprintf("%s; the directory is for its owner only: run as %s, or give it the socket's group and chmod g+x it", head, f.owner)
	case f.inGroup:
		return fmt.Sprintf("%s; you are in group %q, yet %s refuses you: a directory on the socket's path may not let the group through (chmod g+x it), or run as %s", head, f.group, what, f.owner)
	default:
		return fmt.Sprintf("%s; join group %q (usermod -aG %s $USER, then log in again) or run as %s", head, f.group, f.group, f.owner)
	}
}
