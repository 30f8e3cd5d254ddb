package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"

	"github.com/rumor-dev/rumor/gossip/redial"
)

// fakeDNS is a DNS whose records tests change while nodes run; it counts
// lookups. A name without records does not resolve (an error, as NXDOMAIN).
type fakeDNS struct {
	mu      sync.Mutex
	ip      map[string][]net.IPAddr
	txt     map[string][]string
	lookups atomic.Int64
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{ip: make(map[string][]net.IPAddr), txt: make(map[string][]string)}
}

func (f *fakeDNS) resolver(t *testing.T) *madns.Resolver {
	t.Helper()
	r, err := madns.NewResolver(madns.WithDefaultResolver(f))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fakeDNS) setIP(name string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ip[name] = nil
	for _, s := range ips {
		f.ip[name] = append(f.ip[name], net.IPAddr{IP: net.ParseIP(s)})
	}
}

// setDNSAddr sets the /dnsaddr records of name to addrs.
func (f *fakeDNS) setDNSAddr(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txt["_dnsaddr."+name] = nil
	for _, a := range addrs {
		f.txt["_dnsaddr."+name] = append(f.txt["_dnsaddr."+name], "dnsaddr="+a)
	}
}

func (f *fakeDNS) LookupIPAddr(_ context.Context, name string) ([]net.IPAddr, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ip[name]) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return append([]net.IPAddr(nil), f.ip[name]...), nil
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.txt[name]) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return append([]string(nil), f.txt[name]...), nil
}

// TestFound: each peer shows how the node first found it.
func TestFound(t *testing.T) {
	a, _ := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = a.Addrs()
	b, _ := startNode(t, cfg)
	c, _ := startNode(t, testConfig(t))
	eventually(t, waitFor, "B and A connected", func() bool { return connected(b, a) && connected(a, b) })
	b.AddPeer(peer.AddrInfo{ID: c.ID(), Addrs: c.h.Addrs()})
	eventually(t, waitFor, "B and C connected", func() bool { return connected(b, c) && connected(c, b) })
	for _, tc := range []struct {
		on   *Node
		of   *Node
		want redial.Found
	}{{b, a, redial.FoundJoin}, {a, b, redial.FoundInbound}, {b, c, redial.FoundGossip}, {c, b, redial.FoundInbound}, {b, b, ""}} {
		if got := tc.on.Found(tc.of.ID()); got != tc.want {
			t.Errorf("%s.Found(%s) = %q, want %q", tc.on.ID().ShortString(), tc.of.ID().ShortString(), got, tc.want)
		}
	}
	// The first way stays.
	b.AddPeer(peer.AddrInfo{ID: a.ID(), Addrs: a.h.Addrs()})
	if got := b.Found(a.ID()); got != redial.FoundJoin {
		t.Errorf("after AddPeer, B.Found(A) = %q, want %q", got, redial.FoundJoin)
	}
}

// TestJoinDNSNameReresolved: a node joins a peer by a /dnsaddr name whose
// TXT records carry the peer's address and id. The peer restarts on
// another port and the record changes: the node, which kept the name and
// not the address, resolves it again on redial and reaches the peer at its
// new address.
func TestJoinDNSNameReresolved(t *testing.T) {
	dns := newFakeDNS()
	cfgA := testConfig(t)
	a, err := New(context.Background(), cfgA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	dns.setDNSAddr("fleet.test", a.Addrs()...)

	cfgB := testConfig(t)
	cfgB.Bootstrap = []string{"/dnsaddr/fleet.test"}
	cfgB.Resolver = dns.resolver(t)
	b, _ := startNode(t, cfgB)
	eventually(t, waitFor, "B to reach A through the name", func() bool { return connected(b, a) })
	if got := b.Found(a.ID()); got != redial.FoundDNS {
		t.Errorf("B.Found(A) = %q, want %q", got, redial.FoundDNS)
	}

	old := a.Addrs()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A restarted keeps its id: until B has seen the old connection go,
	// "connected" would still be true of it.
	eventually(t, waitFor, "B to see A gone", func() bool { return !connected(b, a) })
	cfgA.Rand = nil
	a2, _ := startNode(t, cfgA) // same identity, a new port
	if a2.Addrs()[0] == old[0] {
		t.Fatalf("A restarted on its old address %s; the test needs a new one", old[0])
	}
	before := dns.lookups.Load()
	dns.setDNSAddr("fleet.test", a2.Addrs()...)
	eventually(t, waitFor, "B to reach A at its new address", func() bool { return connected(b, a2) })
	if dns.lookups.Load() == before {
		t.Error("B reached A's new address without a DNS lookup")
	}
	remote := b.h.Network().ConnsToPeer(a2.ID())[0].RemoteMultiaddr().String()
	if !strings.HasPrefix(a2.Addrs()[0], remote) {
		t.Errorf("B's connection to A is to %s, want A's new address %s", remote, a2.Addrs()[0])
	}
}

// TestJoinDNSNameNotResolvingIsRetried: a /dns4 join address whose name
// does not resolve yet is logged and retried, not fatal; once the record
// exists the node reaches the peer. A bare /dnsaddr name that does not
// resolve is retried likewise.
func TestJoinDNSNameNotResolvingIsRetried(t *testing.T) {
	dns := newFakeDNS()
	a, _ := startNode(t, testConfig(t))
	at, err := ma.NewMultiaddr(a.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	port, err := at.ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := startNode(t, testConfig(t))

	logs := newLogRecorder()
	cfg := testConfig(t)
	cfg.Bootstrap = []string{
		fmt.Sprintf("/dns4/a.test/tcp/%s/p2p/%s", port, a.ID()),
		"/dnsaddr/later.test",
	}
	cfg.Resolver = dns.resolver(t)
	cfg.Logger = logs.logger()
	b, _ := startNode(t, cfg)
	eventually(t, waitFor, "B to say both names did not resolve", func() bool {
		return logs.count("gossip: dial failed") >= 1 && logs.count("gossip: join name did not resolve; retrying") >= 1
	})
	tries := dns.lookups.Load()
	eventually(t, waitFor, "B to retry the names", func() bool { return dns.lookups.Load() >= tries+2 })
	if connected(b, a) || connected(b, other) {
		t.Fatal("B connected before the names resolved")
	}
	dns.setIP("a.test", "127.0.0.1")
	dns.setDNSAddr("later.test", other.Addrs()...)
	eventually(t, waitFor, "B to reach both once the names resolve", func() bool { return connected(b, a) && connected(b, other) })
	for _, p := range []*Node{a, other} {
		if got := b.Found(p.ID()); got != redial.FoundDNS {
			t.Errorf("B.Found(%s) = %q, want %q", p.ID().ShortString(), got, redial.FoundDNS)
		}
	}
	// Said once each, not at every retry.
	if n := logs.count("gossip: join name did not resolve; retrying"); n != 1 {
		t.Errorf("the name's failure was logged %d times at info or above, want 1", n)
	}
}

// fakeMDNS is an injected mDNS service: the test calls the notifee.
type fakeMDNS struct {
	service string
	notifee mdns.Notifee
	closed  atomic.Bool
}

func (f *fakeMDNS) Close() error { f.closed.Store(true); return nil }

// TestMDNSWiring: peers reported by the mDNS service are dialled and
// found by mdns; one the allowlist refuses is ignored and counted; the
// service is closed with the node, and reports after that do nothing. The
// service name comes from the cluster's.
func TestMDNSWiring(t *testing.T) {
	a, _ := startNode(t, testConfig(t))
	refused, _ := startNode(t, testConfig(t))
	fake := &fakeMDNS{}
	cfg := testConfig(t)
	cfg.MDNS = true
	cfg.AllowPeers = []peer.ID{a.ID()}
	cfg.startMDNS = func(_ host.Host, service string, n mdns.Notifee) (io.Closer, error) {
		fake.service, fake.notifee = service, n
		return fake, nil
	}
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fake.service != MDNSService("test") {
		t.Errorf("service %q, want %q", fake.service, MDNSService("test"))
	}
	fake.notifee.HandlePeerFound(peer.AddrInfo{ID: refused.ID(), Addrs: refused.h.Addrs()})
	fake.notifee.HandlePeerFound(peer.AddrInfo{ID: a.ID(), Addrs: a.h.Addrs()})
	eventually(t, waitFor, "B to dial the peer mDNS found", func() bool { return connected(b, a) })
	if got := b.Found(a.ID()); got != redial.FoundMDNS {
		t.Errorf("B.Found(A) = %q, want %q", got, redial.FoundMDNS)
	}
	if got := b.MDNSIgnored(); got != 1 {
		t.Errorf("MDNSIgnored = %d, want 1", got)
	}
	if b.Found(refused.ID()) != "" || connected(b, refused) {
		t.Error("B took up a peer its allowlist refuses")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !fake.closed.Load() {
		t.Error("Close left the mDNS service running")
	}
	fake.notifee.HandlePeerFound(peer.AddrInfo{ID: refused.ID(), Addrs: refused.h.Addrs()}) // must not block or count
	if got := b.MDNSIgnored(); got != 1 {
		t.Errorf("after Close, MDNSIgnored = %d, want 1", got)
	}

	cfg.startMDNS = func(host.Host, string, mdns.Notifee) (io.Closer, error) { return nil, errors.New("no multicast") }
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "mDNS") {
		t.Errorf("New with a failing mDNS service: err %v, want one naming mDNS", err)
	}
	if MDNSService("one") == MDNSService("two") {
		t.Error("two clusters share an mDNS service name")
	}
}

// TestMDNSFindsPeers: two nodes of a cluster with real mDNS and no join
// list find each other over multicast; a node of another cluster on the
// same network is not taken up by them.
func TestMDNSFindsPeers(t *testing.T) {
	var nodes []*Node
	us := fmt.Sprintf("test-%x", rand.Uint64()) // apart from other tests' nodes
	for _, cluster := range []string{us, us, us + "-other"} {
		cfg := testConfig(t)
		cfg.Cluster = cluster
		cfg.MDNS = true
		n, _ := startNode(t, cfg)
		nodes = append(nodes, n)
	}
	a, b, other := nodes[0], nodes[1], nodes[2]
	eventually(t, waitFor, "A and B to find each other by mDNS", func() bool { return connected(a, b) && connected(b, a) })
	if fa, fb := a.Found(b.ID()), b.Found(a.ID()); (fa != redial.FoundMDNS && fa != redial.FoundInbound) || (fb != redial.FoundMDNS && fb != redial.FoundInbound) || (fa == redial.FoundInbound && fb == redial.FoundInbound) {
		t.Errorf("A.Found(B) = %q, B.Found(A) = %q: want mdns, one of them may be inbound", fa, fb)
	}
	if a.Found(other.ID()) != "" || b.Found(other.ID()) != "" {
		t.Error("a node of another cluster was taken up by mDNS")
	}
}
