// Package netcut cuts network links between libp2p hosts that run in one
// process, so tests and benchmarks can partition rumor agents without
// touching the operating system's network.
//
// Give every host its own Gater (libp2p.ConnectionGater(g)) and block the
// peers it must not reach. A Gater only refuses new connections; to cut a
// link that is already up, also close it, e.g.
//
//	g.Block(other, true)
//	_ = h.Network().ClosePeer(other)
//
// Lifting the block (Block(other, false)) lets the next dial through; the
// hosts' own redialing reconnects them.
package netcut

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is a libp2p connection gater that refuses connections to and from
// blocked peers: outbound dials to them are refused before they start, and
// inbound connections from them once the security handshake has named the
// remote peer. The zero value blocks nothing and is ready to use; a Gater
// is safe for concurrent use.
type Gater struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

// New returns a Gater that blocks nothing.
func New() *Gater { return &Gater{} }

// Block blocks p (on true) or lifts the block (on false). It does not close
// connections that are already open.
func (g *Gater) Block(p peer.ID, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !on {
		delete(g.blocked, p)
		return
	}
	if g.blocked == nil {
		g.blocked = make(map[peer.ID]bool)
	}
	g.blocked[p] = true
}

// Blocked reports whether p is blocked.
func (g *Gater) Blocked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked[p]
}

// InterceptPeerDial refuses dials to a blocked peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return !g.Blocked(p) }

// InterceptAddrDial refuses dials to any address of a blocked peer.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.Blocked(p) }

// InterceptAccept accepts every inbound connection: the remote peer is not
// known yet, InterceptSecured decides.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection, in either direction, once the
// handshake shows it is with a blocked peer.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.Blocked(p)
}

// InterceptUpgraded refuses a connection with a blocked peer once more at
// the end of the upgrade: one that passed InterceptSecured just before the
// block was set would otherwise survive the cut.
func (g *Gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return !g.Blocked(c.RemotePeer()), 0
}
