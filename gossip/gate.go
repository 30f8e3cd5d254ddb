package gossip

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// allowGater is a libp2p connection gater that admits only the peers on an
// allowlist (and the node itself), on every transport: our own dials to
// other peers are refused before they start, and connections in either
// direction once the security handshake has named the remote peer (for TCP
// and QUIC alike). Every refusal is counted. An empty list admits every
// peer. The list can be replaced while the node runs (set). A gater
// configured through Config.HostOptions, if any, is consulted after the
// allowlist.
//
// The first refusal of each peer is logged (a peer that is refused again
// and again, say a redialling agent left out of the list, makes one line,
// not one a refusal); the set of peers already logged is bounded
// (refusedLogSize), so a flood of fresh ids cannot grow it.
type allowGater struct {
	self    peer.ID
	list    atomic.Pointer[map[peer.ID]bool] // nil map: open, admit anyone
	next    connmgr.ConnectionGater          // nil: no other gater
	refused atomic.Uint64
	log     *slog.Logger
	logged  *lru.Cache[peer.ID, struct{}] // peers whose refusal was logged
}

// refusedLogSize bounds the set of refused peers that the gater remembers
// having logged; past it, the least recently refused are forgotten (and
// logged again if they come back).
const refusedLogSize = 1024

var _ connmgr.ConnectionGater = (*allowGater)(nil)

func newAllowGater(self peer.ID, allow []peer.ID, log *slog.Logger) *allowGater {
	logged, err := lru.New[peer.ID, struct{}](refusedLogSize)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	g := &allowGater{self: self, log: log, logged: logged}
	g.set(allow)
	return g
}

// refuse counts a refusal of p and logs it if it is the first of p that
// the gater remembers.
func (g *allowGater) refuse(p peer.ID, what string) {
	g.refused.Add(1)
	if seen, _ := g.logged.ContainsOrAdd(p, struct{}{}); seen {
		return
	}
	g.log.Warn(fmt.Sprintf("gossip: refused %s: peer %s is not in allow_peers", what, p), "peer", p)
}

// set replaces the allowlist; an empty one admits every peer. Refusals
// under the new list are logged afresh.
func (g *allowGater) set(allow []peer.ID) {
	g.logged.Purge()
	var m map[peer.ID]bool
	if len(allow) > 0 {
		m = make(map[peer.ID]bool, len(allow)+1)
		for _, p := range allow {
			m[p] = true
		}
		m[g.self] = true
	}
	g.list.Store(&m)
}

// allowed reports whether p may connect under the current list.
func (g *allowGater) allowed(p peer.ID) bool {
	m := *g.list.Load()
	return m == nil || m[p]
}

// option installs g as the host's gater, chaining any gater that earlier
// options (Config.HostOptions) installed: libp2p accepts only one.
func (g *allowGater) option() libp2p.Option {
	return func(c *libp2p.Config) error {
		g.next, c.ConnectionGater = c.ConnectionGater, g
		return nil
	}
}

// InterceptPeerDial refuses, and counts, a dial to a peer not on the list.
func (g *allowGater) InterceptPeerDial(p peer.ID) bool {
	if !g.allowed(p) {
		g.refuse(p, "to dial")
		return false
	}
	return g.next == nil || g.next.InterceptPeerDial(p)
}

// InterceptAddrDial refuses a dial to a peer not on the list (not counted:
// InterceptPeerDial has counted the dial already).
func (g *allowGater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g.allowed(p) && (g.next == nil || g.next.InterceptAddrDial(p, a))
}

// InterceptAccept defers to the next gater: the remote peer is not known
// before the handshake.
func (g *allowGater) InterceptAccept(a network.ConnMultiaddrs) bool {
	return g.next == nil || g.next.InterceptAccept(a)
}

// InterceptSecured refuses, and counts, a connection in either direction
// with a peer not on the list, as soon as the handshake has named it.
func (g *allowGater) InterceptSecured(dir network.Direction, p peer.ID, a network.ConnMultiaddrs) bool {
	if !g.allowed(p) {
		g.refuse(p, "connection")
		return false
	}
	return g.next == nil || g.next.InterceptSecured(dir, p, a)
}

// InterceptUpgraded defers to the next gater.
func (g *allowGater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if g.next == nil {
		return true, 0
	}
	return g.next.InterceptUpgraded(c)
}

// IsQUIC reports whether m uses a QUIC-based transport, which a libp2p
// private network (pnet) does not cover.
func IsQUIC(m ma.Multiaddr) bool {
	for _, c := range m {
		switch c.Code() {
		case ma.P_QUIC, ma.P_QUIC_V1, ma.P_WEBTRANSPORT:
			return true
		}
	}
	return false
}
