package rpc

import "io/fs"

// Perm is who may connect to the local API's Unix socket: its mode (owner
// and group bits only) and its group.
type Perm struct {
	// Mode is the socket file's permission bits, such as 0o600 or 0o660.
	Mode fs.FileMode
	// GID is the socket's group; -1 leaves the process's group.
	GID int
}

// DefaultPerm is a socket for the process's user only: mode 0600, the
// process's group.
var DefaultPerm = Perm{Mode: 0o600, GID: -1}

// GroupAccess reports whether p lets the socket's group connect.
func (p Perm) GroupAccess() bool { return p.Mode&0o020 != 0 }
