package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// startCluster starts n agents on 127.0.0.1, each joining through the
// first, and waits until every agent is connected to every other and
// holds every member's entry.
func startCluster(t *testing.T, n int, mod func(*config.Config)) []*Agent {
	t.Helper()
	return startClusterOpts(t, n, mod, nil)
}

// startClusterOpts is startCluster with per-agent options.
func startClusterOpts(t *testing.T, n int, mod func(*config.Config), opts func(i int) Options) []*Agent {
	t.Helper()
	agents := make([]*Agent, n)
	for i := range agents {
		cfg := config.LocalConfig(t.TempDir())
		if i > 0 {
			cfg.Bootstrap = agents[0].Addrs()
		}
		if mod != nil {
			mod(&cfg)
		}
		var o Options
		if opts != nil {
			o = opts(i)
		}
		o.Rand, o.NoSocket = rand.New(rand.NewPCG(uint64(i), 7)), true
		a, err := New(cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		agents[i] = a
	}
	// A formed cluster: every agent is connected to every other, knows
	// that every other subscribes to every topic (GossipSub then floods a
	// node's own message to all of them at once; one that must wait for
	// mesh repair can take a heartbeat, ~1 s), and holds every member's
	// entry.
	eventually(t, 20*time.Second, "every agent connected to every other", func() error {
		for _, a := range agents {
			if got := len(a.Gossip().Peers()); got < n-1 {
				return fmt.Errorf("%s has %d peers, want %d", shortID(a.ID()), got, n-1)
			}
			for _, ns := range crdt.Namespaces {
				if got := len(a.Gossip().TopicPeers(string(ns))); got < n-1 {
					return fmt.Errorf("%s knows %d peers on topic %s, want %d", shortID(a.ID()), got, ns, n-1)
				}
			}
		}
		return nil
	})
	eventually(t, 20*time.Second, "every agent knows every other", func() error {
		for _, a := range agents {
			members := 0
			for _, e := range a.Store().List("node/") {
				if crdt.IsMemberKey(e.Key) {
					members++
				}
			}
			if members != n {
				return fmt.Errorf("%s sees %d members", shortID(a.ID()), members)
			}
		}
		return nil
	})
	return agents
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameState reports the first key under prefix on which two agents differ.
func sameState(agents []*Agent, prefix string) error {
	want := agents[0].Store().List(prefix)
	for _, a := range agents[1:] {
		got := a.Store().List(prefix)
		if len(got) != len(want) {
			return fmt.Errorf("%s holds %d keys under %q, %s holds %d", shortID(a.ID()), len(got), prefix, shortID(agents[0].ID()), len(want))
		}
		for i := range got {
			if !got[i].Equal(want[i]) {
				return fmt.Errorf("%s differs on %s", shortID(a.ID()), got[i].Key)
			}
		}
	}
	return nil
}

func TestKernelRenewReleaseAndDenial(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, func(c *config.Config) {
		c.Settle, c.MaxSkew, c.LeaseMargin = 100*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	})
	res, err := as[0].KernelClaim(ctx, "jup", rpc.KernelClaim{Keep: true, TTLMillis: 800, Job: "nb1"})
	if err != nil || !res.Granted || res.Kernel.Epoch != 1 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	eventually(t, 5*time.Second, "lease visible", func() error {
		if k, _ := as[1].KernelGet(ctx, "jup"); k.Holder != as[0].ID() {
			return fmt.Errorf("as[1] sees %+v", k)
		}
		return nil
	})
	res, err = as[1].KernelClaim(ctx, "jup", rpc.KernelClaim{Keep: true})
	if err != nil || res.Granted || res.Kernel.Holder != as[0].ID() {
		t.Fatalf("claim of a held kernel: %+v %v; want denied naming %s", res, err, as[0].ID())
	}
	if _, err := as[1].KernelRenew(ctx, "jup", rpc.KernelRenew{}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("renew by non-holder: %v", err)
	}
	k, err := as[0].KernelRenew(ctx, "jup", rpc.KernelRenew{TTLMillis: 60_000})
	if err != nil || !k.Live || time.Until(k.Expires) < 50*time.Second {
		t.Fatalf("renew: %+v %v", k, err)
	}
	if _, err := as[0].KernelRelease(ctx, "jup", rpc.KernelRelease{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "release visible", func() error {
		if k, _ := as[2].KernelGet(ctx, "jup"); k.Live || !k.Released {
			return fmt.Errorf("as[2] sees %+v", k)
		}
		return nil
	})
	// Watch as[2]'s lease events while it claims; its agent renews the
	// lease every ttl/3, so it outlives several TTLs.
	wctx, stop := context.WithCancel(ctx)
	events, synced := make(chan rpc.Event, 64), make(chan struct{})
	go func() {
		_ = as[2].Watch(wctx, rpc.WatchRequest{Prefix: "kernel/jup"}, func(ev rpc.Event) error {
			switch ev.Op {
			case rpc.OpSynced: // the watch follows every change from here
				close(synced)
			case "lease":
				events <- ev
			}
			return nil
		})
	}()
	select {
	case <-synced:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not start within 5s")
	}
	res, err = as[2].KernelClaim(ctx, "jup", rpc.KernelClaim{Keep: true, TTLMillis: 300})
	if err != nil || !res.Granted || res.Kernel.Epoch != 2 {
		t.Fatalf("claim after release: %+v %v", res, err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Lease != want || ev.Key != "kernel/jup" {
				t.Fatalf("lease event %+v, want %s", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
	next(rpc.LeaseGranted)
	for range 3 { // 3 renewals ≈ one TTL
		next(rpc.LeaseRenewed)
	}
	next(rpc.LeaseRenewed)
	stop()
	if k, _ := as[1].KernelGet(ctx, "jup"); !k.Live || k.Holder != as[2].ID() {
		t.Fatalf("after more than a TTL of renewals as[1] sees %+v", k)
	}
	// The holder dies: renewals stop, the lease expires, and after the skew
	// margin another node takes the kernel at the next epoch.
	as[2].Close()
	eventually(t, 5*time.Second, "expired lease can be claimed", func() error {
		res, err := as[1].KernelClaim(ctx, "jup", rpc.KernelClaim{Keep: true})
		if err != nil || !res.Granted {
			return fmt.Errorf("%+v %v", res, err)
		}
		if res.Kernel.Epoch != 3 {
			t.Fatalf("epoch after expiry = %d, want 3", res.Kernel.Epoch)
		}
		return nil
	})
}

// errNotYet is what a polled condition returns while it still waits.
var errNotYet = errors.New("not yet")

// joinAgent starts one more agent that joins through as[0].
func joinAgent(t *testing.T, as []*Agent, mod func(*config.Config), opts Options) *Agent {
	t.Helper()
	cfg := config.LocalConfig(t.TempDir())
	cfg.Bootstrap = as[0].Addrs()
	if mod != nil {
		mod(&cfg)
	}
	return startAlone(t, cfg, opts)
}
