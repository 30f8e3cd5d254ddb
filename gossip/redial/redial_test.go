package redial

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const waitFor = 15 * time.Second // generous deadline for anything network-bound

// testConfig has fast redials, as gossip's tests use.
func testConfig() Config {
	return Config{
		Min:         20 * time.Millisecond,
		Max:         200 * time.Millisecond,
		DialTimeout: 5 * time.Second,
		Rand:        rand.New(rand.NewPCG(1, 2)),
	}
}

// newID returns a fresh peer id.
func newID(t *testing.T) peer.ID {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start runs a redialer on a fresh loopback TCP host. stop (also run at
// cleanup) stops it, waits for Run to return and closes the host.
func start(t *testing.T, cfg Config) (r *Redialer, stop func()) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	r, err = New(h, cfg)
	if err != nil {
		_ = h.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = h.Close()
	}
	t.Cleanup(stop)
	return r, stop
}

// TestCheckJoin: join addresses end in /p2p/<id>, but for a bare
// /dnsaddr name; New names the bad one.
func TestCheckJoin(t *testing.T) {
	id := newID(t).String()
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"/ip4/10.0.0.1/tcp/7946/p2p/" + id, true},
		{"/ip4/10.0.0.1/udp/7946/quic-v1/p2p/" + id, true},
		{"/dns4/a.example.com/tcp/7946/p2p/" + id, true},
		{"/dns6/a.example.com/tcp/7946/p2p/" + id, true},
		{"/dns/a.example.com/tcp/7946/p2p/" + id, true},
		{"/dnsaddr/fleet.example.com/p2p/" + id, true},
		{"/dnsaddr/fleet.example.com", true},
		{"/ip4/10.0.0.1/tcp/7946", false},                   // no id
		{"/dns4/a.example.com/tcp/7946", false},             // no id, and A records carry none
		{"/dnsaddr/fleet.example.com/tcp/7946", false},      // nothing but /p2p after a /dnsaddr name
		{"/dns4/a.example.com/tcp/7946/p2p/notanid", false}, // bad id
		{"dns4/a.example.com", false},                       // no leading slash
		{"", false},
	} {
		err := CheckJoin(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckJoin(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
	cfg := testConfig()
	cfg.Bootstrap = []string{"/dns4/a.example.com/tcp/7946"}
	if _, err := New(nil, cfg); err == nil || !strings.Contains(err.Error(), "Bootstrap[0]") {
		t.Errorf("New with a join address without an id: err %v, want one naming Bootstrap[0]", err)
	}
}

// TestRedialDelay checks the backoff schedule: none after no failure, then
// doubling from Config.Min to Config.Max with jitter in [d/2, d].
func TestRedialDelay(t *testing.T) {
	r := &Redialer{min: 100 * time.Millisecond, max: 1 * time.Second, rnd: rand.New(rand.NewPCG(5, 6))}
	if d := r.delayOf(&knownPeer{vouched: true}); d != 0 {
		t.Errorf("delay after no failure = %v, want 0", d)
	}
	for failures, ceiling := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 50: time.Second, 1000: time.Second,
	} {
		for range 100 {
			if d := r.delayOf(&knownPeer{failures: failures, vouched: true}); d < ceiling/2 || d > ceiling {
				t.Fatalf("delay after %d failures = %v, want in [%v, %v]", failures, d, ceiling/2, ceiling)
			}
		}
	}
}

// TestRedialDelayOfRefusingPeer: a peer that refused us backs off up to
// RefusedMax instead of Config.Max, and so does a stranger (never
// connected, not a bootstrap peer), faster; others keep Config.Max.
func TestRedialDelayOfRefusingPeer(t *testing.T) {
	cfg := testConfig()
	cfg.Min, cfg.Max = 100*time.Millisecond, time.Second
	r, err := New(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k        knownPeer
		lo, hi   time.Duration
		describe string
	}{
		{knownPeer{failures: 30, vouched: true}, 500 * time.Millisecond, time.Second, "lost peer"},
		{knownPeer{failures: 30, refusals: 1, vouched: true}, RefusedMax / 2, RefusedMax, "refusing peer"},
		{knownPeer{failures: 3, refusals: 3, vouched: true}, 200 * time.Millisecond, 400 * time.Millisecond, "refusing peer, third failure"},
		{knownPeer{failures: 1}, 50 * time.Millisecond, 100 * time.Millisecond, "stranger, first failure"},
		{knownPeer{failures: 3}, 800 * time.Millisecond, 1600 * time.Millisecond, "stranger, third failure"},
		{knownPeer{failures: 30}, RefusedMax / 2, RefusedMax, "stranger"},
	} {
		for range 100 {
			if d := r.delayOf(&tc.k); d < tc.lo || d > tc.hi {
				t.Fatalf("%s: delayOf = %v, want in [%v, %v]", tc.describe, d, tc.lo, tc.hi)
			}
		}
	}
}

// TestStrangerDialsAreRateLimited: peers heard of from others (Add)
// and never connected, all of whose addresses point at one victim that is
// no libp2p node (as planted node/ entries would), are dialled at most
// firstDialBurst at once and then firstDialRate a second, and back off
// faster than known peers: the victim sees a bounded number of
// connections, not one per peer per redial. A bootstrap peer is no
// stranger: its redials are not limited.
func TestStrangerDialsAreRateLimited(t *testing.T) {
	const (
		strangers = 20
		window    = 3 * time.Second
	)
	victim, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := victim.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = victim.Close()
		<-accepting
	})
	at, err := manet.FromNetAddr(victim.Addr())
	if err != nil {
		t.Fatal(err)
	}

	r, stop := start(t, testConfig())
	begin := time.Now()
	for range strangers {
		r.Add(peer.AddrInfo{ID: newID(t), Addrs: []ma.Multiaddr{at}}, FoundGossip)
	}
	time.Sleep(window) // a measurement window, not a wait for an event
	got, elapsed := hits.Load(), time.Since(begin)
	limit := int64(firstDialBurst + firstDialRate*elapsed.Seconds() + 1)
	t.Logf("%d strangers at one address: %d connections in %v (limit %d)", strangers, got, elapsed.Round(time.Millisecond), limit)
	if got > limit {
		t.Errorf("the victim saw %d connections in %v, want at most %d", got, elapsed, limit)
	}
	if got < firstDialBurst {
		t.Errorf("the victim saw %d connections, want at least the burst of %d: are strangers dialled at all?", got, firstDialBurst)
	}

	stop()
	if r.Found(newID(t)) != "" {
		t.Error("Found of a peer never added is not empty")
	}

	// A bootstrap peer at the victim's address is redialled on the usual
	// schedule (doubling from 20 ms to RedialMax, 200 ms, here: ten dials
	// in about 1.5 s), not a stranger's (growing fourfold: six dials in
	// 15 s).
	cfg := testConfig()
	boot := newID(t)
	cfg.Bootstrap = []string{at.String() + "/p2p/" + boot.String()}
	before := hits.Load()
	r, _ = start(t, cfg)
	if got := r.Found(boot); got != FoundJoin {
		t.Errorf("Found(bootstrap peer) = %q, want %q", got, FoundJoin)
	}
	deadline := time.Now().Add(waitFor)
	for hits.Load()-before < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d redials of the bootstrap peer in %v, want 10", hits.Load()-before, waitFor)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, with a deadline
	}
}

// TestPreferredPeers: the maxPeers best-ranked others, best first, without
// self or repeats; every other in rank order when maxPeers is 0.
func TestPreferredPeers(t *testing.T) {
	var ids []peer.ID
	for i := range 12 {
		ids = append(ids, peer.ID(fmt.Sprintf("peer-%02d", i)))
	}
	self := ids[0]
	all := PreferredPeers(self, append(slices.Clone(ids), ids[3]), 0)
	if len(all) != len(ids)-1 || slices.Contains(all, self) {
		t.Fatalf("PreferredPeers(maxPeers 0) = %d peers (self included: %v), want the %d others once each", len(all), slices.Contains(all, self), len(ids)-1)
	}
	for i := 1; i < len(all); i++ {
		if rank(self, all[i-1]) > rank(self, all[i]) {
			t.Fatalf("PreferredPeers not in rank order at %d: %v", i, all)
		}
	}
	if got := PreferredPeers(self, ids, 4); !slices.Equal(got, all[:4]) {
		t.Errorf("PreferredPeers(maxPeers 4) = %v, want the first 4 by rank %v", got, all[:4])
	}
	if got := PreferredPeers(self, ids, 40); !slices.Equal(got, all) {
		t.Errorf("PreferredPeers(maxPeers 40) = %v, want all %v", got, all)
	}
}

// TestAddAfterRunReturns: Add does not block once Run has returned, and
// Run leaves no dial of its own running.
func TestAddAfterRunReturns(t *testing.T) {
	r, stop := start(t, testConfig())
	r.Add(peer.AddrInfo{ID: newID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}, FoundGossip)
	stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Add(peer.AddrInfo{ID: newID(t)}, FoundGossip)
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Add blocked after Run returned")
	}
}
