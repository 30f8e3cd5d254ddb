package cluster

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// linkBits is the bandwidth of every node's up and down link.
const linkBits = 100_000_000

// Network is the simulated packet network the nodes of a simulated cluster
// talk over: simnet's links and router, with one-way latency by region
// pair, cut links and random loss. Every node is one IP address, and the
// network's state is keyed by that address, so a restarted node (a new
// endpoint at the same address) keeps its cuts.
type Network struct {
	net *simnet.Simnet

	mu       sync.Mutex
	rng      *rand.Rand
	region   map[string]string           // ip → region
	latency  map[[2]string]time.Duration // region pair (sorted) → one-way latency
	cut      map[[2]string]bool          // ip pair (sorted) → no packets
	loss     float64                     // probability a packet is dropped
	dropped  atomic.Uint64               // packets dropped by cuts and loss
	sentPkts atomic.Uint64               // packets handed to the network
	sentB    atomic.Uint64               // bytes handed to the network
	base     time.Duration               // latency within a region
	traffic  sync.Map                    // ip → *Traffic: each node's packets
}

// Traffic counts one node's packets on the simulated network, by address
// (a restarted node keeps counting): every QUIC packet it handed to the
// network (whatever the loss and cuts did with it) and every one that was
// delivered to it, with their UDP payload bytes. All libp2p traffic is in
// it: handshakes, GossipSub and its control messages, anti-entropy,
// probes, acknowledgements.
type Traffic struct {
	PacketsOut, BytesOut, PacketsIn, BytesIn atomic.Uint64
}

// TrafficStats is a snapshot of a Traffic.
type TrafficStats struct {
	PacketsOut, BytesOut, PacketsIn, BytesIn uint64
}

// Sub returns t minus an earlier snapshot.
func (t TrafficStats) Sub(o TrafficStats) TrafficStats {
	return TrafficStats{t.PacketsOut - o.PacketsOut, t.BytesOut - o.BytesOut, t.PacketsIn - o.PacketsIn, t.BytesIn - o.BytesIn}
}

// Add returns t plus o.
func (t TrafficStats) Add(o TrafficStats) TrafficStats {
	return TrafficStats{t.PacketsOut + o.PacketsOut, t.BytesOut + o.BytesOut, t.PacketsIn + o.PacketsIn, t.BytesIn + o.BytesIn}
}

// trafficOf returns the counters of the node at ip.
func (n *Network) trafficOf(ip string) *Traffic {
	if t, ok := n.traffic.Load(ip); ok {
		return t.(*Traffic)
	}
	t, _ := n.traffic.LoadOrStore(ip, new(Traffic))
	return t.(*Traffic)
}

// NodeTraffic returns the packets and bytes the node at ip sent and
// received so far.
func (n *Network) NodeTraffic(ip string) TrafficStats {
	t := n.trafficOf(ip)
	return TrafficStats{t.PacketsOut.Load(), t.BytesOut.Load(), t.PacketsIn.Load(), t.BytesIn.Load()}
}

// NewNetwork makes a network whose random loss draws from seed; base is the
// one-way latency between nodes of one region. Start it before use.
func NewNetwork(seed uint64, base time.Duration) *Network {
	n := &Network{
		rng:     rand.New(rand.NewPCG(seed, seed^0x5eed)),
		region:  make(map[string]string),
		latency: make(map[[2]string]time.Duration),
		cut:     make(map[[2]string]bool),
		base:    base,
	}
	n.net = &simnet.Simnet{
		LatencyFunc: n.latencyOf,
		Logger:      slog.New(slog.DiscardHandler),
	}
	return n
}

// Start starts the router and links.
func (n *Network) Start() { n.net.Start() }

// Close stops the router and links; every endpoint's reads fail after it.
func (n *Network) Close() { n.net.Close() }

// pair is an unordered pair of strings.
func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// SetRegion places the node at ip in region.
func (n *Network) SetRegion(ip, region string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.region[ip] = region
}

// SetLatency sets the one-way latency between two regions.
func (n *Network) SetLatency(a, b string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.latency[pair(a, b)] = d
}

// SetLoss sets the probability that any packet is dropped.
func (n *Network) SetLoss(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss = p
}

// Cut drops (on) or lets through (off) every packet between two nodes.
func (n *Network) Cut(a, b string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.cut[pair(a, b)] = true
	} else {
		delete(n.cut, pair(a, b))
	}
}

// HealAll removes every cut.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
}

// Stats returns the packets and bytes handed to the network and the
// packets it dropped.
func (n *Network) Stats() (packets, bytes, dropped uint64) {
	return n.sentPkts.Load(), n.sentB.Load(), n.dropped.Load()
}

// latencyOf is the router's latency function: the one-way latency of a
// packet's region pair, base within a region or for an unknown pair.
func (n *Network) latencyOf(p *simnet.Packet) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	ra, rb := n.region[ipOf(p.From)], n.region[ipOf(p.To)]
	if ra != rb {
		if d, ok := n.latency[pair(ra, rb)]; ok {
			return d
		}
	}
	return n.base
}

// drop reports whether a packet from one node to another is lost.
func (n *Network) drop(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[pair(from, to)] || (n.loss > 0 && n.rng.Float64() < n.loss) {
		n.dropped.Add(1)
		return true
	}
	return false
}

func ipOf(a net.Addr) string {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.IP.String()
	}
	host, _, _ := net.SplitHostPort(a.String())
	return host
}

// endpoint is a node's socket on the network: a simnet endpoint whose
// writes pass through the network's cuts and loss first.
type endpoint struct {
	*simnet.SimConn
	nw      *Network
	self    string
	traffic *Traffic
}

// WriteTo sends p to addr unless the network drops it, in which case it
// reports success, as a lossy network does.
func (e *endpoint) WriteTo(p []byte, addr net.Addr) (int, error) {
	e.nw.sentPkts.Add(1)
	e.nw.sentB.Add(uint64(len(p)))
	e.traffic.PacketsOut.Add(1)
	e.traffic.BytesOut.Add(uint64(len(p)))
	to := ipOf(addr)
	if e.nw.drop(e.self, to) {
		return len(p), nil
	}
	in := e.nw.trafficOf(to)
	in.PacketsIn.Add(1)
	in.BytesIn.Add(uint64(len(p)))
	return e.SimConn.WriteTo(p, addr)
}

// sourceIP tells quicreuse the endpoint's own address as the source of
// every packet (there is no routing table to ask).
type sourceIP struct{ ip net.IP }

func (s sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) { return s.ip, nil }

// Transports returns the libp2p options that put a node at ip on the
// network: QUIC over a simulated endpoint (as go-libp2p's
// x/simlibp2p.QUICSimnet does, with the network's cuts and loss in the
// write path), and no identify address discovery or resource limits
// (neither is part of what the simulation tests, and the former stalls
// synctest).
func (n *Network) Transports(ip string) []libp2p.Option {
	parsed := net.ParseIP(ip)
	reuse := []quicreuse.Option{
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return sourceIP{parsed}, nil }),
		quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
			if !addr.IP.Equal(parsed) {
				return nil, fmt.Errorf("cluster: node %s cannot listen on %s", ip, addr)
			}
			c := n.net.NewEndpoint(addr, simnet.NodeBiDiLinkSettings{
				Uplink:   simnet.LinkSettings{BitsPerSecond: linkBits},
				Downlink: simnet.LinkSettings{BitsPerSecond: linkBits},
			})
			return &endpoint{SimConn: c, nw: n, self: ip, traffic: n.trafficOf(ip)}, nil
		}),
	}
	return []libp2p.Option{
		libp2p.Transport(quic.NewTransport),
		libp2p.QUICReuse(func(l fx.Lifecycle, reset quicgo.StatelessResetKey, token quicgo.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
			cm, err := quicreuse.NewConnManager(reset, token, opts...)
			if err != nil {
				return nil, err
			}
			l.Append(fx.StopHook(cm.Close)) // libp2p does not close a conn manager it was given
			return cm, nil
		}, reuse...),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	}
}

// IP returns the address of the i-th node (0-based), a public IPv4
// address as go-libp2p's own simulations use.
func IP(i int) string { return simnet.IntToPublicIPv4(i).String() }
