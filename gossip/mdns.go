package gossip

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/rumor-dev/rumor/gossip/redial"
)

// discovery is the node's multicast DNS (Config.MDNS): it advertises the
// node and hands the peers it hears of to the redialer, as strangers found
// by [redial.FoundMDNS]. It owns the mDNS service, which it stops in close, and
// waits for every report of a peer in progress: go-libp2p calls the
// notifee in goroutines of its own, which after close return at once.
type discovery struct {
	n       *Node
	svc     io.Closer
	ignored atomic.Uint64 // peers the allowlist refuses

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // HandlePeerFound calls in progress
}

var _ mdns.Notifee = (*discovery)(nil)

// startMDNS starts go-libp2p's mDNS service.
func startMDNS(h host.Host, service string, n mdns.Notifee) (io.Closer, error) {
	svc := mdns.NewMdnsService(h, service, n)
	if err := svc.Start(); err != nil {
		_ = svc.Close()
		return nil, err
	}
	return svc, nil
}

// start starts the service, go-libp2p's unless the tests replaced it.
func (d *discovery) start() error {
	start := d.n.cfg.startMDNS
	if start == nil {
		start = startMDNS
	}
	service := MDNSService(d.n.cfg.Cluster)
	svc, err := start(d.n.h, service, d)
	if err != nil {
		return fmt.Errorf("gossip: start mDNS (service %s): %w", service, err)
	}
	d.svc = svc
	d.n.log.Info("gossip: mDNS on", "service", service)
	return nil
}

// HandlePeerFound takes a peer heard of by mDNS: one the node's allowlist
// refuses is ignored and counted; any other is dialled (the connection
// gater still judges the connection). It may be called from any goroutine,
// also after close, when it does nothing.
func (d *discovery) HandlePeerFound(ai peer.AddrInfo) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	if ai.ID == d.n.self {
		return
	}
	if !d.n.gate.allowed(ai.ID) {
		d.ignored.Add(1)
		d.n.log.Debug("gossip: mDNS peer not in allow_peers: ignored", "peer", ai.ID)
		return
	}
	d.n.log.Debug("gossip: mDNS found a peer", "peer", ai.ID, "addrs", ai.Addrs)
	d.n.addPeer(ai, redial.FoundMDNS)
}

// close stops the service and waits for reports in progress; Node.Close
// calls it once, before it stops the redialer (which takes the peers of
// the reports in progress).
func (d *discovery) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	if d.svc != nil {
		if err := d.svc.Close(); err != nil {
			d.n.log.Debug("gossip: stop mDNS", "err", err)
		}
	}
	d.wg.Wait()
}

// MDNSIgnored returns how many peers heard of by mDNS the node ignored
// because its allowlist (Config.AllowPeers) refuses them (0 without mDNS).
// A peer heard of again is counted again.
func (n *Node) MDNSIgnored() uint64 {
	if n.mdns == nil {
		return 0
	}
	return n.mdns.ignored.Load()
}
