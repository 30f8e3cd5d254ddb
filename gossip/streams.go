package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Stream is one bidirectional stream to a peer, of a protocol of the
// node's own (anti-entropy).
type Stream interface {
	io.ReadWriter
	// Close ends the stream in good order: it waits (up to libp2p's
	// negotiation timeout, pushing any earlier read deadline out) for the
	// protocol handshake if nothing was read yet.
	Close() error
	// Reset aborts the stream at once, in both directions, and unblocks
	// a Read or Write in progress: the way to stop an exchange that has
	// run out of time.
	Reset() error
	SetDeadline(time.Time) error
	// Peer is the node at the other end, authenticated by the handshake.
	Peer() peer.ID
}

type stream struct{ network.Stream }

func (s stream) Peer() peer.ID { return s.Conn().RemotePeer() }

// OpenStream opens a stream of protocol proto to p over a connection that
// is open already. It never dials: reconnecting is the redialer's job,
// with its backoff, so that a peer that refuses this node is not dialled
// again behind the redialer's back.
func (n *Node) OpenStream(ctx context.Context, p peer.ID, proto string) (Stream, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if n.h.Network().Connectedness(p) != network.Connected {
		return nil, fmt.Errorf("gossip: open %s to %s: %w", proto, p, ErrNotConnected)
	}
	s, err := n.nd.NewStream(ctx, p, protocol.ID(proto))
	if err != nil {
		return nil, fmt.Errorf("gossip: open %s to %s: %w", proto, p, err)
	}
	return stream{s}, nil
}

// ErrNotConnected is returned by OpenStream for a peer with no open
// connection.
var ErrNotConnected = errors.New("gossip: not connected")

// Handle serves protocol proto: h runs on its own goroutine for every
// stream a peer opens, until stop is called.
func (n *Node) Handle(proto string, h func(Stream)) (stop func()) {
	n.h.SetStreamHandler(protocol.ID(proto), func(s network.Stream) { h(stream{s}) })
	return func() { n.h.RemoveStreamHandler(protocol.ID(proto)) }
}

// Notify calls connected when a connection to a peer opens, and
// disconnected when the last connection to a peer closes, until stop is
// called. They run on the network's goroutines and must not block.
func (n *Node) Notify(connected, disconnected func(peer.ID)) (stop func()) {
	b := &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if connected != nil {
				connected(c.RemotePeer())
			}
		},
		DisconnectedF: func(nw network.Network, c network.Conn) {
			p := c.RemotePeer()
			if disconnected != nil && nw.Connectedness(p) != network.Connected {
				disconnected(p)
			}
		},
	}
	n.h.Network().Notify(b)
	return func() { n.h.Network().StopNotify(b) }
}

// Connected reports whether a connection to p is open.
func (n *Node) Connected(p peer.ID) bool { return n.h.Network().Connectedness(p) == network.Connected }

// Keeps reports whether the node keeps a connection to p: p is a known
// peer among the MaxPeers best-ranked (any known peer when MaxPeers is 0),
// which the redialer dials again at once whenever it is lost. A peer
// that dialled this node, or one the node dialled while it ranked higher
// and let go since, is not kept: a lost connection to it may be a
// connection one side let go on purpose.
func (n *Node) Keeps(p peer.ID) bool { return n.red.Keeps(p) }

// Ping measures one round trip to p over the open connection.
func (n *Node) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	res, ok := <-ping.Ping(network.WithNoDial(ctx, "ping uses open connections only"), n.h, p)
	switch {
	case !ok:
		return 0, ctx.Err()
	case res.Error != nil:
		return 0, res.Error
	}
	return res.RTT, nil
}

// ClosePeer closes every connection to p. The redialer reconnects a known
// peer with its backoff.
func (n *Node) ClosePeer(p peer.ID) error { return n.h.Network().ClosePeer(p) }

// ErrBackoff marks a Dial refused because a dial to the peer failed
// moments ago (the swarm's dial backoff): it says nothing new of the peer.
var ErrBackoff = errors.New("gossip: dial backoff")

// Dial opens a connection to ai.ID at ai's addresses. The redialer closes
// it again later if the peer is not one the node keeps. Unlike the
// redialer's dials it keeps the swarm's dial backoff: a forced direct dial
// that is still resolving addresses when the host closes dereferences a
// nil transport in go-libp2p v0.51's swarm (a panic seen in the agent's
// tests), and a prober's dial may be in flight then.
func (n *Node) Dial(ctx context.Context, ai peer.AddrInfo) error {
	err := n.h.Connect(ctx, ai)
	if errors.Is(err, swarm.ErrDialBackoff) {
		return fmt.Errorf("%w: %w", ErrBackoff, err)
	}
	return err
}
