package redial

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// Found says how a node first found a peer.
type Found string

// How a node can find a peer. The first way recorded stays.
const (
	// FoundJoin: a Bootstrap address that names an IP (the join list).
	FoundJoin Found = "join"
	// FoundDNS: a Bootstrap address with a DNS name (/dns, /dns4, /dns6,
	// /dnsaddr).
	FoundDNS Found = "dns"
	// FoundMDNS: multicast DNS on the local network.
	FoundMDNS Found = "mdns"
	// FoundGossip: heard of from other nodes.
	FoundGossip Found = "gossip"
	// FoundInbound: it connected to us before we knew it any other way.
	FoundInbound Found = "inbound"
)

// foundTable records how each peer was first found. Its methods are safe
// for concurrent use: the redial loop, Add's callers (mDNS among them) and
// the swarm's connection notifications all write it.
type foundTable struct {
	mu sync.Mutex
	m  map[peer.ID]Found
}

// note records how id was found, unless it was found before.
func (f *foundTable) note(id peer.ID, how Found) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[peer.ID]Found)
	}
	if _, ok := f.m[id]; !ok {
		f.m[id] = how
	}
}

// get returns how id was found, "" if never.
func (f *foundTable) get(id peer.ID) Found {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[id]
}

// inbound is the network notifiee that records peers that connected to us
// before we knew them.
func (f *foundTable) inbound() *network.NotifyBundle {
	return &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirInbound {
			f.note(c.RemotePeer(), FoundInbound)
		}
	}}
}

// CheckJoin reports whether s can be a Bootstrap (join) address: a
// multiaddr ending in /p2p/<peer id>, whose host may be an IP or a DNS
// name (/dns, /dns4, /dns6, /dnsaddr), or a bare /dnsaddr/<name>, whose
// TXT records carry the peer ids.
func CheckJoin(s string) error {
	_, _, err := parseJoin(s)
	return err
}

// parseJoin parses a Bootstrap address: either a peer (with its id) or a
// /dnsaddr name without an id.
func parseJoin(s string) (ai *peer.AddrInfo, name ma.Multiaddr, err error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, nil, err
	}
	if _, last := ma.SplitLast(m); last != nil && last.Protocol().Code == ma.P_P2P {
		ai, err := peer.AddrInfoFromP2pAddr(m)
		return ai, nil, err
	}
	if first, rest := ma.SplitFirst(m); first != nil && first.Protocol().Code == ma.P_DNSADDR {
		if len(rest) > 0 {
			return nil, nil, fmt.Errorf("a /dnsaddr name takes nothing after it but /p2p/<peer id>, got %s", rest)
		}
		return nil, m, nil
	}
	return nil, nil, errors.New("does not end in /p2p/<peer id> (only a bare /dnsaddr/<name>, whose TXT records carry the ids, may leave it out)")
}

// bootstrapPeers parses join addresses: the peers they name, merging
// addresses of the same peer, and how each was found (FoundDNS if any of
// its addresses has a DNS name, else FoundJoin); and the /dnsaddr names
// without an id.
func bootstrapPeers(join []string) ([]peer.AddrInfo, map[peer.ID]Found, []ma.Multiaddr, error) {
	var infos []peer.AddrInfo
	var names []ma.Multiaddr
	found := make(map[peer.ID]Found)
	for i, s := range join {
		ai, name, err := parseJoin(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("redial: Bootstrap[%d] %q: %w", i, s, err)
		}
		if name != nil {
			if !slices.ContainsFunc(names, name.Equal) {
				names = append(names, name)
			}
			continue
		}
		j := slices.IndexFunc(infos, func(x peer.AddrInfo) bool { return x.ID == ai.ID })
		if j < 0 {
			infos = append(infos, peer.AddrInfo{ID: ai.ID})
			j = len(infos) - 1
		}
		for _, a := range ai.Addrs {
			if !slices.ContainsFunc(infos[j].Addrs, a.Equal) {
				infos[j].Addrs = append(infos[j].Addrs, a)
			}
		}
		if slices.ContainsFunc(ai.Addrs, isDNS) {
			found[ai.ID] = FoundDNS
		} else if found[ai.ID] == "" {
			found[ai.ID] = FoundJoin
		}
	}
	return infos, found, names, nil
}

// isDNS reports whether a has a DNS component to resolve.
func isDNS(a ma.Multiaddr) bool { return madns.Matches(a) }

// Resolution bounds: /dnsaddr records may point at further names.
const (
	maxResolveDepth = 4
	maxResolved     = 100
)

// resolveAddrs resolves the DNS names among addrs, recursively, keeping
// only the addresses of peer id (a /dnsaddr name may list many peers),
// without their /p2p suffix. Addresses without a name pass through. It
// fails only when no address is left and some name did not resolve.
func resolveAddrs(ctx context.Context, r *madns.Resolver, id peer.ID, addrs []ma.Multiaddr) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	var errs []error
	var walk func(a ma.Multiaddr, depth int)
	walk = func(a ma.Multiaddr, depth int) {
		if len(out) >= maxResolved {
			return
		}
		if !isDNS(a) {
			if p2p, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
				if pid, err := peer.Decode(last.Value()); err != nil || pid != id {
					return // another peer's record
				}
				a = p2p
			}
			if len(a) > 0 {
				out = append(out, a)
			}
			return
		}
		if depth >= maxResolveDepth {
			errs = append(errs, fmt.Errorf("resolve %s: more than %d names deep", a, maxResolveDepth))
			return
		}
		got, err := r.Resolve(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", a, err))
			return
		}
		if len(got) == 0 {
			errs = append(errs, fmt.Errorf("resolve %s: no records", a))
		}
		for _, g := range got {
			walk(g, depth+1)
		}
	}
	for _, a := range addrs {
		walk(a, 0)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// resolvePeers resolves a /dnsaddr name into the peers its records list,
// each with the name itself as its address: a dial resolves it again
// (resolveAddrs), so a peer that moves is found where the records say.
func resolvePeers(ctx context.Context, r *madns.Resolver, name ma.Multiaddr) ([]peer.ID, error) {
	var ids []peer.ID
	var errs []error
	seen := make(map[peer.ID]bool)
	var walk func(a ma.Multiaddr, depth int)
	walk = func(a ma.Multiaddr, depth int) { // a is a /dnsaddr name
		if depth >= maxResolveDepth {
			errs = append(errs, fmt.Errorf("resolve %s: more than %d names deep", a, maxResolveDepth))
			return
		}
		got, err := r.Resolve(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", a, err))
			return
		}
		for _, g := range got {
			if len(ids) >= maxResolved {
				return
			}
			// A record naming its peer ends in /p2p/<id>; one without
			// an id is followed only if it is another /dnsaddr name.
			if _, last := ma.SplitLast(g); last != nil && last.Protocol().Code == ma.P_P2P {
				if pid, err := peer.Decode(last.Value()); err == nil && !seen[pid] {
					seen[pid] = true
					ids = append(ids, pid)
				}
				continue
			}
			if first, _ := ma.SplitFirst(g); first != nil && first.Protocol().Code == ma.P_DNSADDR {
				walk(g, depth+1)
			}
		}
	}
	walk(name, 0)
	if len(ids) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("resolve %s: no record names a peer (/p2p/<id>)", name)
	}
	return ids, nil
}
