package gossip

import (
	"cmp"
	"context"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// protectTag marks known peers in the connection manager so it never trims
// their connections.
const protectTag = "rumor-known-peer"

// redialer keeps every known peer connected. Its state is owned by the run
// goroutine; other goroutines talk to it through add and results.
type redialer struct {
	h           host.Host
	log         *slog.Logger
	rnd         *rand.Rand
	min, max    time.Duration
	stable      time.Duration // a connection that lasted this long resets the backoff
	dialTimeout time.Duration
	maxPeers    int             // 0: dial every known peer
	wg          *sync.WaitGroup // owner of the dial goroutines

	add     chan peer.AddrInfo
	results chan dialResult
	peers   map[peer.ID]*knownPeer
	order   []peer.ID // known peers by rank (see rank), best first
}

// knownPeer is the redial state of one peer.
type knownPeer struct {
	addrs    []ma.Multiaddr
	rank     uint64    // lower is better: a hash of both ids
	kept     bool      // among the first maxPeers by rank: always redialled
	failures int       // dials failed (or connections lost young) since the last stable connection
	since    time.Time // when we last saw it connected; zero while disconnected
	next     time.Time // when to dial next; zero if not scheduled
	dialing  bool
}

type dialResult struct {
	id  peer.ID
	err error
}

func newRedialer(h host.Host, cfg Config, wg *sync.WaitGroup) *redialer {
	return &redialer{
		h:           h,
		log:         cfg.Logger,
		rnd:         cfg.Rand,
		min:         cfg.RedialMin,
		max:         cfg.RedialMax,
		stable:      min(cfg.RedialMax, 10*cfg.RedialMin),
		dialTimeout: cfg.DialTimeout,
		maxPeers:    cfg.MaxPeers,
		wg:          wg,
		add:         make(chan peer.AddrInfo),
		results:     make(chan dialResult),
		peers:       make(map[peer.ID]*knownPeer),
	}
}

// run is the redial loop. It returns when ctx is cancelled.
//
// It wakes on every connection opened or closed, not only when a peer's
// connectedness changes: a second connection to a connected peer (say,
// GossipSub's stream to a peer whose only connection was closing dialled
// it again) can be a dial beyond max_peers to let go, and no connectedness
// event would say so. A connection made before run starts is seen by the
// first reconcile.
func (r *redialer) run(ctx context.Context, initial []peer.AddrInfo) {
	wake := make(chan struct{}, 1)
	poke := func(network.Network, network.Conn) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	notify := &network.NotifyBundle{ConnectedF: poke, DisconnectedF: poke}
	r.h.Network().Notify(notify)
	defer r.h.Network().StopNotify(notify)
	for _, ai := range initial {
		r.remember(ai)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.reconcile(ctx, time.Now(), timer)
		select {
		case <-ctx.Done():
			return
		case ai := <-r.add:
			r.remember(ai)
		case res := <-r.results:
			r.finished(res, time.Now())
		case <-wake:
		case <-timer.C:
		}
	}
}

// remember adds a peer, or new addresses of a known one.
func (r *redialer) remember(ai peer.AddrInfo) {
	if ai.ID == "" || ai.ID == r.h.ID() {
		return
	}
	k, ok := r.peers[ai.ID]
	if !ok {
		k = &knownPeer{rank: rank(r.h.ID(), ai.ID)}
		r.peers[ai.ID] = k
		r.order = append(r.order, ai.ID)
		slices.SortFunc(r.order, func(a, b peer.ID) int {
			return cmp.Or(cmp.Compare(r.peers[a].rank, r.peers[b].rank), cmp.Compare(a, b))
		})
		for i, id := range r.order {
			p := r.peers[id]
			was := p.kept
			p.kept = r.maxPeers <= 0 || i < r.maxPeers
			switch {
			case p.kept && !was:
				r.h.ConnManager().Protect(id, protectTag)
			case !p.kept && was:
				r.h.ConnManager().Unprotect(id, protectTag)
			}
		}
	}
next:
	for _, a := range ai.Addrs {
		for _, b := range k.addrs {
			if a.Equal(b) {
				continue next
			}
		}
		k.addrs = append(k.addrs, a)
	}
}

// finished records the outcome of a dial.
func (r *redialer) finished(res dialResult, now time.Time) {
	k, ok := r.peers[res.id]
	if !ok {
		return
	}
	k.dialing = false
	if res.err != nil {
		k.failures++
		k.next = now.Add(r.delay(k.failures))
		r.log.Debug("gossip: dial failed", "peer", res.id, "failures", k.failures, "retry_in", k.next.Sub(now), "err", res.err)
		return
	}
	if k.since.IsZero() {
		k.since = now
	}
	k.next = time.Time{}
}

// rank orders the peers a node prefers to dial: a hash of both ids, so that
// every node prefers a different set.
func rank(self, other peer.ID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(self))
	h.Write([]byte(other))
	return h.Sum64()
}

// reconcile starts a dial for every kept peer (see Config.MaxPeers) that is
// disconnected and due, and for further peers in rank order while fewer than
// maxPeers are connected or being dialled; it schedules the others, and arms
// timer for the earliest scheduled dial.
func (r *redialer) reconcile(ctx context.Context, now time.Time, timer *time.Timer) {
	var earliest time.Time
	// busy counts the peers that use up our dial budget: kept peers
	// connected either way, other peers we dialled, and dials under way.
	// Peers that dialled us do not count: every node dials its own
	// maxPeers, so the cluster holds about N x maxPeers connections.
	busy := 0
	if r.maxPeers > 0 {
		for id, k := range r.peers {
			if k.dialing || (k.kept && r.h.Network().Connectedness(id) == network.Connected) || r.dialled(id) {
				busy++
			}
		}
	}
	// Over the bound (peers learnt one at a time were dialled while they
	// ranked first among those known so far): close our own dials to the
	// worst-ranked peers that are not kept, once they are past the young
	// age. A peer that keeps us dials back, and we never close a
	// connection a peer made, so no two nodes fight over a link.
	for i := len(r.order) - 1; i >= 0 && r.maxPeers > 0 && busy > r.maxPeers; i-- {
		id := r.order[i]
		k := r.peers[id]
		if k.kept || k.dialing || k.since.IsZero() {
			continue
		}
		if young := k.since.Add(r.stable); now.Before(young) {
			if earliest.IsZero() || young.Before(earliest) {
				earliest = young // look again when it is old enough
			}
			continue
		}
		if r.closeOutbound(id) {
			busy--
		}
	}
	for _, id := range r.order {
		k := r.peers[id]
		if r.h.Network().Connectedness(id) == network.Connected {
			if k.since.IsZero() {
				k.since = now
				r.log.Info("gossip: peer connected", "peer", id)
				// Seen connected before any dial result (a dial that
				// timed out can still complete in the swarm): look again
				// once it is past the young age, in case it is a dial
				// beyond max_peers that the loop above must let go.
				if young := now.Add(r.stable); earliest.IsZero() || young.Before(earliest) {
					earliest = young
				}
			}
			k.next = time.Time{}
			continue
		}
		if !k.since.IsZero() {
			// Just lost it. A connection that held resets the backoff and is
			// redialled at once; one that dropped young counts as a failure, so
			// a peer that accepts and then hangs up is not hammered.
			if now.Sub(k.since) >= r.stable {
				k.failures = 0
			} else {
				k.failures++
			}
			k.since = time.Time{}
			k.next = now.Add(r.delay(k.failures))
			r.log.Info("gossip: peer disconnected", "peer", id, "redial_in", k.next.Sub(now))
		}
		if k.dialing {
			continue
		}
		if !k.kept && busy >= r.maxPeers {
			continue // enough peers: dialled again only if some go
		}
		if k.next.IsZero() {
			k.next = now.Add(r.delay(k.failures))
		}
		if !now.Before(k.next) {
			k.next = time.Time{}
			k.dialing = true
			busy++
			r.dial(ctx, id, k.addrs)
			continue
		}
		if earliest.IsZero() || k.next.Before(earliest) {
			earliest = k.next
		}
	}
	timer.Stop()
	if !earliest.IsZero() {
		timer.Reset(earliest.Sub(now))
	}
}

// dialled reports whether this node has a connection to id that it dialled.
func (r *redialer) dialled(id peer.ID) bool {
	for _, c := range r.h.Network().ConnsToPeer(id) {
		if c.Stat().Direction == network.DirOutbound {
			return true
		}
	}
	return false
}

// closeOutbound closes the connections to id that this node dialled, and
// reports whether it closed any.
func (r *redialer) closeOutbound(id peer.ID) bool {
	closed := false
	for _, c := range r.h.Network().ConnsToPeer(id) {
		if c.Stat().Direction == network.DirOutbound {
			r.log.Debug("gossip: closing a dial to a peer beyond max_peers", "peer", id)
			_ = c.Close()
			closed = true
		}
	}
	return closed
}

// dial connects to a peer in a goroutine owned by r.wg and reports the
// outcome on r.results.
func (r *redialer) dial(ctx context.Context, id peer.ID, addrs []ma.Multiaddr) {
	ai := peer.AddrInfo{ID: id, Addrs: append([]ma.Multiaddr(nil), addrs...)}
	r.wg.Go(func() {
		// Our own backoff governs redials: bypass the swarm's dial backoff,
		// which would refuse a restarted peer for 5 s or more.
		dctx := network.WithForceDirectDial(ctx, "rumor redial")
		dctx, cancel := context.WithTimeout(dctx, r.dialTimeout)
		err := r.h.Connect(dctx, ai)
		cancel()
		select {
		case r.results <- dialResult{id: id, err: err}:
		case <-ctx.Done():
		}
	})
}

// delay is the wait before the next dial after the given number of
// consecutive failures: none after zero, then exponential from min to max,
// with jitter drawn from [d/2, d].
func (r *redialer) delay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := r.min
	for i := 1; i < failures && d < r.max; i++ {
		d *= 2
	}
	d = min(d, r.max)
	if half := d / 2; half > 0 {
		d = half + time.Duration(r.rnd.Int64N(int64(half)+1))
	}
	return d
}
