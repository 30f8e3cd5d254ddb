package gossip

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"

	"github.com/rumor-dev/rumor/gossip/redial"
)

// Defaults applied by [New] to zero-valued [Config] fields.
const (
	DefaultMaxMessageBytes = 1 << 20
	DefaultRedialMin       = 500 * time.Millisecond
	DefaultRedialMax       = 30 * time.Second
	DefaultDialTimeout     = 5 * time.Second
)

// Config configures [New]. Zero values of the optional fields take the
// defaults named on each field.
type Config struct {
	// Cluster names the cluster; topic names are "/rumor/<Cluster>/<topic>/1".
	// Required; must not contain '/' or white space.
	Cluster string
	// Topics are the short names of the topics to join, e.g. "svc", "bl",
	// "task", "kernel", "node". At least one; no duplicates, no '/'.
	Topics []string
	// Lane names the topics, among Topics, of the priority lane: a second
	// GossipSub router, on [LaneProtocol], carries them, with its own
	// event loop, its own queue of outgoing messages per peer and its own
	// validation queue, workers and throttles. Messages of the other
	// topics, however many, neither delay nor crowd out (GossipSub drops
	// what overflows its queues) those of the lane: a flood on a bulk
	// topic fills the bulk router's queues only. The two routers share
	// the connections, the validator and the counters. Every node of a
	// cluster must name the same lane: a node that carries a topic on the
	// other router does not exchange it with this one by gossip.
	Lane []string
	// Listen are the multiaddrs to listen on, e.g. /ip4/127.0.0.1/tcp/0 and
	// /ip4/127.0.0.1/udp/0/quic-v1. At least one.
	Listen []string
	// Bootstrap are multiaddrs ending in /p2p/<id> (see [redial.CheckJoin]). They
	// are dialled at start and kept connected like peers given to
	// [Node.AddPeer], but are no strangers before they first connect: their
	// dials are not rate limited and back off as those of a lost peer.
	// Their host may be a DNS name (/dns, /dns4, /dns6, /dnsaddr), which
	// Resolver resolves again at every dial: the node keeps the name, not
	// the addresses it got once. A bare /dnsaddr/<name>, without /p2p, is
	// a list of peers in its TXT records: it is resolved at start, and
	// again with backoff while none of the peers it named is connected, and
	// each peer it names is kept with the name as its address. A name that
	// does not resolve is logged and retried, never fatal.
	Bootstrap []string
	// Resolver resolves DNS multiaddrs, those of Bootstrap and any libp2p
	// dials. Nil: madns.DefaultResolver, the system's. Tests inject one
	// whose answers change.
	Resolver *madns.Resolver
	// MDNS advertises the node on the local network by multicast DNS,
	// under the service name [MDNSService] of Cluster (two clusters on one
	// network do not mix), and dials the peers it hears of there, as
	// strangers (see [Node.AddPeer]). Peers that AllowPeers refuses are
	// ignored and counted ([Node.MDNSIgnored]).
	MDNS bool
	// Identity is the node's libp2p key; its peer ID is the node's identity
	// on the wire. Required.
	Identity crypto.PrivKey
	// MaxMessageBytes limits payloads: larger ones are refused by Publish and
	// rejected by the validator with reason "oversized". Default 1 MiB.
	// GossipSub's own frame limit is set to 2×MaxMessageBytes+64 KiB, so that
	// oversized messages reach the validator and are counted.
	MaxMessageBytes int
	// Validate checks a payload, and consumes it: a payload it accepts is
	// delivered to no one else. via is the peer this node received it from
	// (any peer may relay any message), and local is set for the node's
	// own publication, which Publish validates before sending.
	// An error made by [Reject] rejects the message, one made by [Ignore]
	// ignores it, any other error rejects it with reason "invalid"; rejected
	// and ignored messages are neither delivered nor forwarded. It is called
	// concurrently from GossipSub's validation goroutines, for our own
	// published messages too, and must not block for long. Nil accepts every
	// payload within the size limit.
	Validate func(topic string, data []byte, via peer.ID, local bool) error
	// Logger receives the node's logs. Nil discards them.
	Logger *slog.Logger
	// Rand provides the redial jitter. It is used by one goroutine of the
	// node only and must not be shared. Nil seeds one from the time.
	Rand *rand.Rand
	// Transports, if not nil, replace the node's transports (TCP without
	// SO_REUSEPORT, and QUIC unless PSK is set): tests pass a simulated
	// network's QUIC here. The Listen and Bootstrap addresses must be
	// ones these transports speak.
	Transports []libp2p.Option
	// HostOptions are appended after the node's own libp2p options, so they
	// can override them (tests: a ConnectionGater, say).
	HostOptions []libp2p.Option
	// RedialMin and RedialMax bound the backoff between failed dials of a
	// known peer. Defaults 500 ms and 30 s.
	RedialMin, RedialMax time.Duration
	// DialTimeout bounds one dial attempt. Default 5 s.
	DialTimeout time.Duration
	// MaxPeers bounds the peers the node dials on its own: it keeps the
	// MaxPeers known peers that rank first by a hash of its own id and
	// theirs connected, redialling them with backoff (a cut link comes back
	// when the network does), and dials the next ones in rank order while
	// fewer than MaxPeers are connected. Peers that dial in are kept
	// whatever their rank. Each node ranks differently, so the connections
	// form a random graph that GossipSub's mesh spans. 0: dial every known
	// peer (a full mesh of connections, O(N^2) in the cluster).
	MaxPeers int
	// MeshDegree is GossipSub's mesh degree D (Params); 0:
	// DefaultMeshDegree.
	MeshDegree int
	// AllowPeers, if not empty, are the only peers the node connects with
	// (it is always allowed itself): a connection gater refuses every other
	// peer, on TCP and QUIC, before any protocol runs; [Node.Refused] counts
	// the refusals. A gater given in HostOptions is consulted after it.
	AllowPeers []peer.ID
	// PSK, if not nil, makes the host a libp2p private network: only peers
	// with the same 32-byte key can connect. pnet covers TCP only, so the
	// QUIC transport is left out and a QUIC Listen address is an error.
	PSK pnet.PSK

	// pubsubOptions are appended to the GossipSub options (tests: tracers).
	pubsubOptions []pubsub.Option
	// deliver puts validated messages on Messages (tests).
	deliver bool
	// startMDNS, if not nil, replaces go-libp2p's mDNS service when MDNS is
	// set (tests: an injected notifee).
	startMDNS func(h host.Host, service string, n mdns.Notifee) (io.Closer, error)
}

// withDefaults returns c with the zero-valued optional fields set.
func (c Config) withDefaults() Config {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.RedialMin == 0 {
		c.RedialMin = DefaultRedialMin
	}
	if c.RedialMax == 0 {
		c.RedialMax = max(DefaultRedialMax, c.RedialMin)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resolver == nil {
		c.Resolver = madns.DefaultResolver
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c
}

// validate reports the first bad field of c, by name. It expects c to have
// been through withDefaults.
func (c Config) validate() error {
	if c.Cluster == "" {
		return errors.New("gossip: config: Cluster is empty")
	}
	if strings.ContainsAny(c.Cluster, "/ \t\r\n") {
		return fmt.Errorf("gossip: config: Cluster %q contains '/' or white space", c.Cluster)
	}
	if len(c.Topics) == 0 {
		return errors.New("gossip: config: Topics is empty")
	}
	seen := make(map[string]bool, len(c.Topics))
	for i, t := range c.Topics {
		if t == "" || strings.ContainsAny(t, "/ \t\r\n") {
			return fmt.Errorf("gossip: config: Topics[%d] %q is empty or contains '/' or white space", i, t)
		}
		if seen[t] {
			return fmt.Errorf("gossip: config: Topics[%d] %q is a duplicate", i, t)
		}
		seen[t] = true
	}
	lane := make(map[string]bool, len(c.Lane))
	for i, t := range c.Lane {
		if !seen[t] {
			return fmt.Errorf("gossip: config: Lane[%d] %q is not one of Topics", i, t)
		}
		if lane[t] {
			return fmt.Errorf("gossip: config: Lane[%d] %q is a duplicate", i, t)
		}
		lane[t] = true
	}
	if c.MeshDegree < 0 {
		return fmt.Errorf("gossip: config: MeshDegree %d is negative", c.MeshDegree)
	}
	if len(c.Listen) == 0 {
		return errors.New("gossip: config: Listen is empty")
	}
	for i, s := range c.Listen {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("gossip: config: Listen[%d] %q: %w", i, s, err)
		}
		if c.PSK != nil && IsQUIC(m) {
			return fmt.Errorf("gossip: config: Listen[%d] %q is QUIC, but a private network key (PSK) protects TCP only: libp2p's pnet does not cover QUIC; listen on TCP only or drop the PSK", i, s)
		}
	}
	if c.PSK != nil && len(c.PSK) != 32 {
		return fmt.Errorf("gossip: config: PSK is %d bytes, want 32", len(c.PSK))
	}
	for i, s := range c.Bootstrap {
		if err := redial.CheckJoin(s); err != nil {
			return fmt.Errorf("gossip: config: Bootstrap[%d] %q: %w", i, s, err)
		}
	}
	if c.Identity == nil {
		return errors.New("gossip: config: Identity is nil")
	}
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("gossip: config: MaxMessageBytes %d is negative", c.MaxMessageBytes)
	}
	if c.RedialMin < 0 {
		return fmt.Errorf("gossip: config: RedialMin %v is negative", c.RedialMin)
	}
	if c.RedialMax < c.RedialMin {
		return fmt.Errorf("gossip: config: RedialMax %v is below RedialMin %v", c.RedialMax, c.RedialMin)
	}
	if c.MaxPeers < 0 {
		return fmt.Errorf("gossip: config: MaxPeers %d is negative", c.MaxPeers)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("gossip: config: DialTimeout %v is negative", c.DialTimeout)
	}
	return nil
}

// MDNSService returns the multicast DNS service name of a cluster's
// nodes: "_rumor-" and the first 12 hex digits of the SHA-256 of the
// cluster's name, then "._udp" (a name of any characters, within a DNS
// label's 63 bytes).
func MDNSService(cluster string) string {
	sum := sha256.Sum256([]byte(cluster))
	return "_rumor-" + hex.EncodeToString(sum[:6]) + "._udp"
}
