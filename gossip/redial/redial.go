// Package redial keeps a libp2p host's known peers connected, and
// remembers how each was found.
//
// GossipSub does not redial lost peers, so a [Redialer] does: when a
// connection drops it redials at once and then with jittered exponential
// backoff until the peer is back, up to [RefusedMax] for a peer whose
// connections close right after they open (one whose allowlist does not
// name us). With [Config.MaxPeers] it keeps the peers that rank first by a
// hash of both ids ([PreferredPeers]) and dials further ones only while
// too few are connected. Peers heard of from others are strangers until
// they first connect: their dials are rate limited.
//
// Join addresses ([CheckJoin]) may name their host by DNS (/dns4, /dns6,
// /dns, or a /dnsaddr name whose TXT records list the peers): the
// redialer keeps the name and resolves it again at every dial.
// [Redialer.Found] says how each peer was first found.
package redial

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
	"golang.org/x/time/rate"
)

// protectTag marks known peers in the connection manager so it never trims
// their connections.
const protectTag = "rumor-known-peer"

// RefusedMax is the backoff ceiling for a peer that refuses us: one whose
// connections keep closing right after they open (under refusedConnLife:
// most likely its allowlist does not name us, and its gater hangs up once
// the handshake has named us) or whose dials a connection gater refuses.
// Its backoff doubles from Config.Min as for any lost peer, but up to this
// ceiling (or Config.Max if that is longer) instead of Config.Max: about
// ten dials in its first five minutes, then one every 2.5 to 5 minutes. A
// connection to it that lives normally (past the stable age: ten times
// Config.Min, at most Config.Max) resets the backoff.
const RefusedMax = 5 * time.Minute

// refusedConnLife: a connection closed sooner than this after it opened
// (or than the stable age, if that is shorter) counts as a refusal.
const refusedConnLife = time.Second

// refusedWarnAfter is the number of refusals in a row after which the
// redialer says, once, that the peer seems not to admit us.
const refusedWarnAfter = 2

// Dials to strangers: peers given to Add (heard of from other nodes)
// that the node has never seen connected. Anyone who can publish can make
// every node hear of peers whose addresses are somebody else's, so these
// dials are rate limited: at most firstDialBurst at once, then
// firstDialRate a second, over all strangers together (a node joining a
// cluster dials its 32 best-ranked peers in about 6 s; the others dial it
// meanwhile). A stranger whose dials fail backs off by a factor of
// strangerBackoffFactor per failure (from Config.Min: 0.5 s, 2 s,
// 8 s, 32 s, ...) up to RefusedMax. Bootstrap peers, which the
// operator gave, and peers that have been connected are no strangers:
// their redials are neither limited nor slowed.
const (
	firstDialRate         = 4 // per second
	firstDialBurst        = 8
	strangerBackoffFactor = 4
)

// Config configures a [Redialer].
type Config struct {
	// Bootstrap are the join addresses (see [CheckJoin]), given by the
	// operator: dialled at start and kept connected, and no strangers
	// before they first connect. A bare /dnsaddr name is resolved at
	// start, and again with backoff while none of the peers it named is
	// connected; each peer it names is kept with the name as its address.
	Bootstrap []string
	// Min and Max bound the backoff between failed dials of a known peer;
	// 0 < Min <= Max.
	Min, Max time.Duration
	// DialTimeout bounds one dial attempt, and one resolution of a name;
	// above 0.
	DialTimeout time.Duration
	// MaxPeers is how many peers, by rank, the redialer keeps connected on
	// its own (see [PreferredPeers]); 0: every known peer.
	MaxPeers int
	// Resolver resolves DNS names at every dial. Nil: madns.DefaultResolver.
	Resolver *madns.Resolver
	// Allowed is the node's own allowlist: peers it refuses are not
	// dialled. Nil allows every peer.
	Allowed func(peer.ID) bool
	// Logger receives the redialer's logs. Nil discards them.
	Logger *slog.Logger
	// Rand provides the backoff jitter; it is used by Run's goroutine only
	// and must not be shared. Nil seeds one from the time.
	Rand *rand.Rand
}

// Redialer keeps every known peer of a host connected. Its state is owned
// by the goroutine of [Redialer.Run]; its methods are safe for concurrent
// use.
type Redialer struct {
	h           host.Host
	log         *slog.Logger
	rnd         *rand.Rand
	min, max    time.Duration
	refusedMax  time.Duration // backoff ceiling of a peer that refuses us
	stable      time.Duration // a connection that lasted this long resets the backoff
	young       time.Duration // a connection closed younger than this is a refusal
	dialTimeout time.Duration
	maxPeers    int                // 0: dial every known peer
	allowed     func(peer.ID) bool // our own allowlist: peers it refuses are not dialled
	wg          sync.WaitGroup     // the dial and resolve goroutines
	wake        chan struct{}      // a connection opened or closed, or the allowlist changed
	strangers   *rate.Limiter      // dials to peers never seen connected (see firstDialRate)
	res         *madns.Resolver    // resolves DNS names at every dial
	found       foundTable         // how each peer was first found
	boot        []peer.AddrInfo    // Config.Bootstrap's peers
	bootNames   []ma.Multiaddr     // Config.Bootstrap's /dnsaddr names without an id

	add      chan peer.AddrInfo
	stopped  chan struct{} // closed when Run returns
	results  chan dialResult
	resolved chan nameResult
	peers    map[peer.ID]*knownPeer
	order    []peer.ID // known peers by rank (see rank), best first
	names    []*dnsName
}

// dnsName is a Bootstrap /dnsaddr name without a peer id: its TXT records
// name the peers. It is resolved at start, and again, with backoff, while
// none of the peers it named is connected, so that a fleet can bootstrap
// from one name that its operators keep current. The peers it names are
// kept with the name as their address, which each of their dials resolves
// again.
type dnsName struct {
	addr      ma.Multiaddr
	peers     []peer.ID // every peer it has named
	failures  int       // resolutions in a row after which none of its peers connected
	next      time.Time // when to resolve next; zero: now, if none of its peers is connected
	resolving bool
}

type nameResult struct {
	name *dnsName
	ids  []peer.ID
	err  error
}

// knownPeer is the redial state of one peer.
type knownPeer struct {
	addrs    []ma.Multiaddr
	rank     uint64    // lower is better: a hash of both ids
	kept     bool      // among the first maxPeers by rank: always redialled
	failures int       // dials failed (or connections lost young) since the last stable connection
	refusals int       // of those, connections closed right after they opened and dials a gater refused
	warned   bool      // the refusals were logged; cleared by a stable connection
	since    time.Time // when we last saw it connected; zero while disconnected
	next     time.Time // when to dial next; zero if not scheduled
	dialing  bool
	lost     bool // while dialing: a connection was seen and lost (and counted) already
	vouched  bool // a bootstrap peer, or one seen connected: no stranger (see firstDialRate)
}

// errUnresolved marks a dial that failed because a DNS name of the peer
// did not resolve to any of its addresses.
var errUnresolved = errors.New("redial: peer's DNS name did not resolve")

type dialResult struct {
	id  peer.ID
	err error
}

// New makes a redialer of h's known peers, starting with cfg.Bootstrap's;
// [Redialer.Run] dials them. It fails on a bad Bootstrap address, naming
// it, or on bad bounds.
func New(h host.Host, cfg Config) (*Redialer, error) {
	switch {
	case cfg.Min <= 0 || cfg.Max < cfg.Min:
		return nil, fmt.Errorf("redial: backoff bounds %v..%v: want 0 < min <= max", cfg.Min, cfg.Max)
	case cfg.DialTimeout <= 0:
		return nil, fmt.Errorf("redial: dial timeout %v: want it above 0", cfg.DialTimeout)
	case cfg.MaxPeers < 0:
		return nil, fmt.Errorf("redial: max peers %d is negative", cfg.MaxPeers)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Resolver == nil {
		cfg.Resolver = madns.DefaultResolver
	}
	if cfg.Allowed == nil {
		cfg.Allowed = func(peer.ID) bool { return true }
	}
	boot, bootFound, names, err := bootstrapPeers(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	stable := min(cfg.Max, 10*cfg.Min)
	r := &Redialer{
		h:           h,
		log:         cfg.Logger,
		rnd:         cfg.Rand,
		min:         cfg.Min,
		max:         cfg.Max,
		refusedMax:  max(RefusedMax, cfg.Max),
		stable:      stable,
		young:       min(refusedConnLife, stable),
		dialTimeout: cfg.DialTimeout,
		maxPeers:    cfg.MaxPeers,
		allowed:     cfg.Allowed,
		wake:        make(chan struct{}, 1),
		strangers:   rate.NewLimiter(firstDialRate, firstDialBurst),
		res:         cfg.Resolver,
		boot:        boot,
		bootNames:   names,
		add:         make(chan peer.AddrInfo),
		stopped:     make(chan struct{}),
		results:     make(chan dialResult),
		resolved:    make(chan nameResult),
		peers:       make(map[peer.ID]*knownPeer),
	}
	for id, how := range bootFound {
		if h == nil || id != h.ID() {
			r.found.note(id, how)
		}
	}
	return r, nil
}

// Add makes ai a known peer, found by how unless it was found before: it
// is dialled and redialled with backoff whenever disconnected, until Run
// returns. Unless ai came from the operator, it is a stranger until it has
// been seen connected (its addresses may be somebody else's): dials to
// strangers are rate limited, 8 at once and then 4 a second over all of
// them, and a stranger whose dials fail backs off fourfold per failure up
// to [RefusedMax]. Adding a known peer adds any new addresses. Add
// waits for Run to take the peer, and does nothing once Run has returned;
// it is a no-op for the host's own id.
func (r *Redialer) Add(ai peer.AddrInfo, how Found) {
	if ai.ID == "" || ai.ID == r.h.ID() {
		return
	}
	r.found.note(ai.ID, how)
	select {
	case r.add <- ai:
	case <-r.stopped:
	}
}

// Found returns how peer id was first found; "" for a peer never known,
// and for the host itself.
func (r *Redialer) Found(id peer.ID) Found { return r.found.get(id) }

// Inbound returns the network notifiee that records, as [FoundInbound],
// the peers that connect to the host before it knew them. Register it
// before the host listens, so that no connection goes unseen.
func (r *Redialer) Inbound() network.Notifiee { return r.found.inbound() }

// Keeps reports whether the redialer keeps a connection to p: p is a
// known peer among the MaxPeers best-ranked (any known peer when MaxPeers
// is 0), which it dials again at once whenever it is lost.
func (r *Redialer) Keeps(p peer.ID) bool { return r.h.ConnManager().IsProtected(p, protectTag) }

// Poke makes Run look at every known peer again, as when the allowlist
// has changed; it never blocks.
func (r *Redialer) Poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run is the redial loop: it dials the known peers and keeps them
// connected. It returns when ctx is cancelled, once every goroutine it
// started has returned; call it once.
//
// It wakes on every connection opened or closed, not only when a peer's
// connectedness changes: a second connection to a connected peer (say,
// GossipSub's stream to a peer whose only connection was closing dialled
// it again) can be a dial beyond max_peers to let go, and no connectedness
// event would say so. A connection made before run starts is seen by the
// first reconcile.
func (r *Redialer) Run(ctx context.Context) {
	defer close(r.stopped)
	defer r.wg.Wait()
	poke := func(network.Network, network.Conn) { r.Poke() }
	notify := &network.NotifyBundle{ConnectedF: poke, DisconnectedF: poke}
	r.h.Network().Notify(notify)
	defer r.h.Network().StopNotify(notify)
	for _, ai := range r.boot {
		r.remember(ai)
		if k := r.peers[ai.ID]; k != nil {
			k.vouched = true // the operator gave it
		}
	}
	for _, a := range r.bootNames {
		r.names = append(r.names, &dnsName{addr: a})
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
		case res := <-r.resolved:
			r.named(res, time.Now())
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// remember adds a peer, or new addresses of a known one.
func (r *Redialer) remember(ai peer.AddrInfo) {
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
func (r *Redialer) finished(res dialResult, now time.Time) {
	k, ok := r.peers[res.id]
	if !ok {
		return
	}
	k.dialing = false
	if res.err != nil {
		k.failures++
		if errors.Is(res.err, swarm.ErrGaterDisallowedConnection) {
			k.refusals++
		}
		k.next = now.Add(r.delayOf(k))
		logAt := slog.LevelDebug
		if errors.Is(res.err, errUnresolved) && k.failures == 1 {
			logAt = slog.LevelWarn // an operator's name that does not resolve: said once in a row
		}
		r.log.Log(context.Background(), logAt, "gossip: dial failed", "peer", res.id, "failures", k.failures, "retry_in", k.next.Sub(now), "err", res.err)
		r.warnRefused(res.id, k, "dials refused by a connection gater")
		return
	}
	switch {
	case r.h.Network().Connectedness(res.id) == network.Connected:
		k.vouched = true
		if k.since.IsZero() {
			k.since = now
		}
	case !k.lost:
		// The connection closed before we saw it: right after it
		// opened, a refusal. (One seen and lost was counted then.)
		k.failures++
		k.refusals++
		k.next = now.Add(r.delayOf(k))
		r.log.Debug("gossip: dialled peer closed the connection at once", "peer", res.id, "redial_in", k.next.Sub(now))
		r.warnRefused(res.id, k, "connections closed right after they opened")
		return
	}
	k.next = time.Time{}
}

// PreferredPeers returns the peers among others that the node self keeps
// connected when it knows them all ([Config.MaxPeers]): the maxPeers that
// rank first by a hash of both ids, best first; all of them, in rank
// order, when maxPeers is 0. self, if among others, is left out. Each node
// dials its own preferred peers and keeps those that dial it, so a
// cluster's connections are the union of every node's choice; benchmarks
// use it to connect other hosts as rumor's nodes would be.
func PreferredPeers(self peer.ID, others []peer.ID, maxPeers int) []peer.ID {
	out := make([]peer.ID, 0, len(others))
	for _, id := range others {
		if id != self && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b peer.ID) int {
		return cmp.Or(cmp.Compare(rank(self, a), rank(self, b)), cmp.Compare(a, b))
	})
	if maxPeers > 0 && len(out) > maxPeers {
		out = out[:maxPeers]
	}
	return out
}

// rank orders the peers a node prefers to dial: a hash of both ids, so that
// every node prefers a different set.
func rank(self, other peer.ID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(self))
	h.Write([]byte(other))
	return h.Sum64()
}

// reconcile starts a dial for every kept peer (see [Config.MaxPeers]) that is
// disconnected and due, and for further peers in rank order while fewer than
// maxPeers are connected or being dialled; it schedules the others, and arms
// timer for the earliest scheduled dial.
func (r *Redialer) reconcile(ctx context.Context, now time.Time, timer *time.Timer) {
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
			k.vouched = true
			if k.since.IsZero() {
				k.since = now
				if k.refusals > 0 {
					r.log.Debug("gossip: peer connected", "peer", id) // see warnRefused
				} else {
					r.log.Info("gossip: peer connected", "peer", id)
				}
				// Seen connected before any dial result (a dial that
				// timed out can still complete in the swarm): look again
				// once it is past the young age, in case it is a dial
				// beyond max_peers that the loop above must let go.
				if young := now.Add(r.stable); earliest.IsZero() || young.Before(earliest) {
					earliest = young
				}
			}
			if k.failures > 0 {
				if stable := k.since.Add(r.stable); now.Before(stable) {
					// Look again when it has held: that resets the backoff.
					if earliest.IsZero() || stable.Before(earliest) {
						earliest = stable
					}
				} else {
					r.recovered(id, k)
				}
			}
			k.next = time.Time{}
			continue
		}
		if !k.since.IsZero() {
			// Just lost it. A connection that held resets the backoff and is
			// redialled at once; one that dropped young counts as a failure, so
			// a peer that accepts and then hangs up is not hammered, and one
			// that dropped right after it opened as a refusal, whose backoff
			// grows up to refusedMax.
			lived, quiet := now.Sub(k.since), k.refusals > 0
			switch {
			case lived >= r.stable:
				r.recovered(id, k)
			case lived < r.young:
				k.failures++
				k.refusals++
			default:
				k.failures++
			}
			k.since = time.Time{}
			k.lost = k.dialing
			k.next = now.Add(r.delayOf(k))
			logAt := slog.LevelInfo
			if quiet {
				logAt = slog.LevelDebug // it keeps refusing us: said once by warnRefused
			}
			r.log.Log(ctx, logAt, "gossip: peer disconnected", "peer", id, "lived", lived.Round(time.Millisecond), "redial_in", k.next.Sub(now))
			r.warnRefused(id, k, "connections closed right after they opened")
		}
		if k.dialing {
			continue
		}
		if !r.allowed(id) {
			k.next = time.Time{} // not dialled while our own allowlist refuses it
			continue
		}
		if !k.kept && busy >= r.maxPeers {
			continue // enough peers: dialled again only if some go
		}
		if k.next.IsZero() {
			k.next = now.Add(r.delayOf(k))
		}
		if !now.Before(k.next) && !k.vouched && !r.strangers.AllowN(now, 1) {
			// Out of tokens for strangers: look again at the next one.
			if at := r.nextToken(now); earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
			continue
		}
		if !now.Before(k.next) {
			k.next = time.Time{}
			k.dialing, k.lost = true, false
			busy++
			r.dial(ctx, id, k.addrs)
			continue
		}
		if earliest.IsZero() || k.next.Before(earliest) {
			earliest = k.next
		}
	}
	if at := r.resolveNames(ctx, now); !at.IsZero() && (earliest.IsZero() || at.Before(earliest)) {
		earliest = at
	}
	timer.Stop()
	if !earliest.IsZero() {
		timer.Reset(earliest.Sub(now))
	}
}

// resolveNames starts a resolution of every name none of whose peers is
// connected, if due, and returns when the next one is due (zero: none
// scheduled).
func (r *Redialer) resolveNames(ctx context.Context, now time.Time) time.Time {
	var earliest time.Time
	for _, n := range r.names {
		if n.resolving {
			continue
		}
		if slices.ContainsFunc(n.peers, func(id peer.ID) bool { return r.h.Network().Connectedness(id) == network.Connected }) {
			n.failures, n.next = 0, time.Time{}
			continue
		}
		if n.next.IsZero() {
			n.next = now // never resolved, or its last peer just went
		}
		if now.Before(n.next) {
			if earliest.IsZero() || n.next.Before(earliest) {
				earliest = n.next
			}
			continue
		}
		n.resolving = true
		n.failures++ // until one of its peers connects
		r.wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, r.dialTimeout)
			ids, err := resolvePeers(rctx, r.res, n.addr)
			cancel()
			select {
			case r.resolved <- nameResult{name: n, ids: ids, err: err}:
			case <-ctx.Done():
			}
		})
	}
	return earliest
}

// named records the outcome of a name's resolution: the peers it names
// become known peers (given by the operator: no strangers), whose address
// is the name.
func (r *Redialer) named(res nameResult, now time.Time) {
	n := res.name
	n.resolving = false
	n.next = now.Add(r.backoff(n.failures, 2, r.max))
	if res.err != nil {
		logAt := slog.LevelWarn
		if n.failures > 1 {
			logAt = slog.LevelDebug // said when it first failed
		}
		r.log.Log(context.Background(), logAt, "gossip: join name did not resolve; retrying", "name", n.addr, "retry_in", n.next.Sub(now), "err", res.err)
		return
	}
	r.log.Debug("gossip: join name resolved", "name", n.addr, "peers", len(res.ids))
	for _, id := range res.ids {
		if id == r.h.ID() {
			continue
		}
		r.found.note(id, FoundDNS)
		r.remember(peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{n.addr}})
		r.peers[id].vouched = true // the operator gave the name
		if !slices.Contains(n.peers, id) {
			n.peers = append(n.peers, id)
		}
	}
}

// dialled reports whether this node has a connection to id that it dialled.
func (r *Redialer) dialled(id peer.ID) bool {
	for _, c := range r.h.Network().ConnsToPeer(id) {
		if c.Stat().Direction == network.DirOutbound {
			return true
		}
	}
	return false
}

// closeOutbound closes the connections to id that this node dialled, and
// reports whether it closed any.
func (r *Redialer) closeOutbound(id peer.ID) bool {
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
func (r *Redialer) dial(ctx context.Context, id peer.ID, addrs []ma.Multiaddr) {
	ai := peer.AddrInfo{ID: id, Addrs: append([]ma.Multiaddr(nil), addrs...)}
	r.wg.Go(func() {
		// Our own backoff governs redials: bypass the swarm's dial backoff,
		// which would refuse a restarted peer for 5 s or more.
		dctx := network.WithForceDirectDial(ctx, "rumor redial")
		dctx, cancel := context.WithTimeout(dctx, r.dialTimeout)
		err := r.connect(dctx, ai)
		cancel()
		select {
		case r.results <- dialResult{id: id, err: err}:
		case <-ctx.Done():
		}
	})
}

// connect dials ai, resolving its DNS names first: every dial asks the
// resolver again, so a peer given by name is found where the name points
// now, not where it pointed when it was first dialled.
func (r *Redialer) connect(ctx context.Context, ai peer.AddrInfo) error {
	if slices.ContainsFunc(ai.Addrs, isDNS) {
		addrs, err := resolveAddrs(ctx, r.res, ai.ID, ai.Addrs)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no record gives an address of this peer")
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errUnresolved, err)
		}
		ai.Addrs = addrs
	}
	return r.h.Connect(ctx, ai)
}

// delayOf is the wait before the next dial of k after its consecutive
// failures: none after zero, then doubling from min to max (to refusedMax
// once k has refused us; growing by strangerBackoffFactor up to refusedMax
// for a stranger), with jitter drawn from [d/2, d].
func (r *Redialer) delayOf(k *knownPeer) time.Duration {
	switch {
	case !k.vouched:
		return r.backoff(k.failures, strangerBackoffFactor, r.refusedMax)
	case k.refusals > 0:
		return r.backoff(k.failures, 2, r.refusedMax)
	}
	return r.backoff(k.failures, 2, r.max)
}

// backoff is none after zero failures, then growing by factor from min up
// to ceiling, with jitter drawn from [d/2, d].
func (r *Redialer) backoff(failures int, factor time.Duration, ceiling time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := r.min
	for i := 1; i < failures && d < ceiling; i++ {
		d *= factor
	}
	d = min(d, ceiling)
	if half := d / 2; half > 0 {
		d = half + time.Duration(r.rnd.Int64N(int64(half)+1))
	}
	return d
}

// nextToken is when the stranger dial limiter has a token again.
func (r *Redialer) nextToken(now time.Time) time.Time {
	missing := 1 - r.strangers.TokensAt(now)
	if missing <= 0 {
		return now
	}
	return now.Add(time.Duration(missing/float64(r.strangers.Limit())*float64(time.Second)) + time.Millisecond)
}

// warnRefused says once, until it admits us again, that a peer refuses us.
func (r *Redialer) warnRefused(id peer.ID, k *knownPeer, how string) {
	if k.warned || k.refusals < refusedWarnAfter {
		return
	}
	k.warned = true
	r.log.Warn("gossip: peer keeps refusing our connections: we are probably not in its allow_peers; redialling it with backoff",
		"peer", id, "seen", how, "refusals", k.refusals, "backoff_max", r.refusedMax)
}

// recovered resets k's backoff after a connection that held.
func (r *Redialer) recovered(id peer.ID, k *knownPeer) {
	if k.warned {
		r.log.Info("gossip: peer admits our connections again", "peer", id)
	}
	k.failures, k.refusals, k.warned = 0, 0, false
}
