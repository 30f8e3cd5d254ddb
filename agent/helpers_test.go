package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// startCluster starts n agents on 127.0.0.1, each joining through the
// first, and waits until every agent has heard every other's heartbeat.
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
	// A formed cluster: every agent is connected to every other (GossipSub
	// flood-publishes to direct peers; a message that must wait for mesh
	// repair can take a heartbeat, ~1 s) and has heard a heartbeat from
	// every other agent sent after that.
	eventually(t, 20*time.Second, "every agent connected to every other", func() error {
		for _, a := range agents {
			if got := len(a.Gossip().Peers()); got < n-1 {
				return fmt.Errorf("%s has %d peers, want %d", shortID(a.ID()), got, n-1)
			}
		}
		return nil
	})
	connected := time.Now().UnixMilli()
	eventually(t, 20*time.Second, "every agent hears every other", func() error {
		for _, a := range agents {
			nodes := a.Store().List("node/")
			if len(nodes) != n {
				return fmt.Errorf("%s sees %d members", shortID(a.ID()), len(nodes))
			}
			for _, e := range nodes {
				if e.Winner().Stamp.HLC.WallMS() < connected {
					return fmt.Errorf("%s: no recent heartbeat from %s", shortID(a.ID()), shortID(e.Key))
				}
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

func TestWriteOnAnyAgentReachesAll(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 8, nil)
	if _, err := as[1].ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Addr: "10.0.0.1:80", Status: "up", Tags: map[string]string{"zone": "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[2].BlacklistAdd(ctx, "fraud", "user42", rpc.BlacklistAdd{Reason: "chargeback"}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[3].TaskAssign(ctx, "job7", rpc.TaskAssign{Node: as[4].ID()}); err != nil {
		t.Fatal(err)
	}
	res, err := as[5].KernelClaim(ctx, "gpu0", rpc.KernelClaim{Job: "train"})
	if err != nil || !res.Granted {
		t.Fatalf("claim on an idle cluster: %+v, %v", res, err)
	}
	eventually(t, 10*time.Second, "every namespace everywhere", func() error {
		for _, a := range as {
			if s, err := a.ServiceGet(ctx, "web", "w1"); err != nil || s.Addr != "10.0.0.1:80" || !s.Up || s.Owner != as[1].ID() {
				return fmt.Errorf("%s: svc %+v %v", shortID(a.ID()), s, err)
			}
			if _, ok, _ := a.BlacklistHas(ctx, "fraud", "user42"); !ok {
				return fmt.Errorf("%s: blacklist entry missing", shortID(a.ID()))
			}
			if tk, err := a.TaskGet(ctx, "job7"); err != nil || tk.Owner != as[4].ID() {
				return fmt.Errorf("%s: task %+v %v", shortID(a.ID()), tk, err)
			}
			if k, err := a.KernelGet(ctx, "gpu0"); err != nil || k.Holder != as[5].ID() || !k.Live {
				return fmt.Errorf("%s: kernel %+v %v", shortID(a.ID()), k, err)
			}
		}
		return nil
	})
	// Cancel from a node that neither owns nor assigned the task: the
	// owner's agent turns the request into "cancelled" everywhere.
	if tk, err := as[6].TaskCancel(ctx, "job7"); err != nil || tk.State != "cancel-requested" {
		t.Fatalf("cancel: %+v, %v", tk, err)
	}
	eventually(t, 10*time.Second, "task cancelled everywhere", func() error {
		for _, a := range as {
			if tk, _ := a.TaskGet(ctx, "job7"); tk.State != "cancelled" || tk.UpdatedBy != as[4].ID() {
				return fmt.Errorf("%s: task %+v", shortID(a.ID()), tk)
			}
		}
		return nil
	})
	// Another node may not take over a live service instance.
	if _, err := as[0].ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Status: "up"}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("svc set on another node's instance: err %v, want denied", err)
	}
	for _, p := range []string{"svc/", "bl/", "task/", "kernel/"} { // node/ changes with every heartbeat
		if err := sameState(as, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrentConflictingWritesConverge(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 8, nil)
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 99))
			for j := range 40 {
				id := fmt.Sprintf("u%d", r.IntN(5))
				switch r.IntN(4) {
				case 0, 1:
					_, _ = a.BlacklistAdd(ctx, "race", id, rpc.BlacklistAdd{Reason: fmt.Sprintf("by %d #%d", i, j)})
				case 2:
					_ = a.BlacklistRemove(ctx, "race", id)
				case 3:
					// Concurrent creation of the same instance: LWW picks one owner.
					_, _ = a.ServiceSet(ctx, "db", fmt.Sprintf("i%d", r.IntN(3)), rpc.ServiceSet{Status: "up", Addr: fmt.Sprint(i)})
				}
				if _, err := a.TaskAssign(ctx, fmt.Sprintf("t%d", r.IntN(3)), rpc.TaskAssign{Node: as[r.IntN(len(as))].ID()}); err != nil && rpc.CodeOf(err) != rpc.CodeDenied {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	converged := func() error {
		for _, p := range []string{"bl/", "svc/", "task/"} {
			if err := sameState(as, p); err != nil {
				return err
			}
		}
		return nil
	}
	eventually(t, 15*time.Second, "identical state after the races", converged)
	// Re-add after remove works: the last write by stamp decides.
	if err := as[0].BlacklistRemove(ctx, "race", "u0"); err != nil {
		t.Fatal(err)
	}
	// Re-add after remove works once the adder has seen the remove (before
	// that, an add with a smaller stamp correctly loses to it).
	removal, _ := as[0].Store().Get("bl/race/u0")
	eventually(t, 10*time.Second, "remove seen by the re-adder", func() error {
		if e, _ := as[7].Store().Get("bl/race/u0"); !e.Winner().Equal(removal.Winner()) {
			return fmt.Errorf("%s has not seen the removal yet", shortID(as[7].ID()))
		}
		return nil
	})
	if _, err := as[7].BlacklistAdd(ctx, "race", "u0", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "identical state on all agents", func() error {
		if err := converged(); err != nil {
			return err
		}
		for _, a := range as {
			if _, ok, _ := a.BlacklistHas(ctx, "race", "u0"); !ok {
				return fmt.Errorf("%s: u0 not re-added", shortID(a.ID()))
			}
		}
		return nil
	})
	if n := len(as[0].Store().List("bl/race/")); n == 0 {
		t.Fatal("no blacklist writes landed")
	}
}

func TestBlacklistTTLExpiresEverywhere(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 8, nil)
	if _, err := as[3].BlacklistAdd(ctx, "tokens", "tok1", rpc.BlacklistAdd{TTLMillis: 1500}); err != nil {
		t.Fatal(err)
	}
	if _, err := as[3].BlacklistAdd(ctx, "tokens", "keep", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "entry with ttl visible everywhere", func() error {
		for _, a := range as {
			if l, _ := a.BlacklistList(ctx, "tokens"); len(l) != 2 {
				return fmt.Errorf("%s lists %d entries, want 2", shortID(a.ID()), len(l))
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, "entry gone everywhere after expiry", func() error {
		for _, a := range as {
			if _, ok, _ := a.BlacklistHas(ctx, "tokens", "tok1"); ok {
				return fmt.Errorf("%s still has tok1", shortID(a.ID()))
			}
			if _, ok, _ := a.BlacklistHas(ctx, "tokens", "keep"); !ok {
				return fmt.Errorf("%s lost the entry without ttl", shortID(a.ID()))
			}
		}
		return nil
	})
}

func TestKernelContentionOneWinnerPerRound(t *testing.T) {
	ctx := context.Background()
	// The settle window must exceed the worst gossip delay of the burst of
	// 8 simultaneous claims: a few ms in a normal build, but up to ~400 ms
	// measured under the race detector on 2 cores.
	settle := 250 * time.Millisecond
	if raceEnabled {
		settle = time.Second
	}
	as := startCluster(t, 8, func(c *config.Config) { c.Settle = settle })
	const rounds = 50
	for round := range rounds {
		results := make([]rpc.ClaimResult, len(as))
		errs := make([]error, len(as))
		var wg sync.WaitGroup
		for i, a := range as {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = a.KernelClaim(ctx, "k", rpc.KernelClaim{TTLMillis: 60_000})
			}()
		}
		wg.Wait()
		var winner string
		granted := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("round %d: agent %d: %v", round, i, errs[i])
			}
			if r.Granted {
				granted++
				winner = as[i].ID()
			}
		}
		if granted != 1 {
			t.Fatalf("round %d: %d claims granted, want exactly 1: %+v", round, granted, results)
		}
		for i, r := range results {
			if r.Kernel.Holder != winner {
				for j, r := range results {
					t.Logf("agent %d (%s): granted=%v holder=%s epoch=%d granted_at=%v", j, shortID(as[j].ID()), r.Granted, shortID(r.Kernel.Holder), r.Kernel.Epoch, r.Kernel.Granted.Format("15:04:05.000"))
				}
				e, _ := as[i].Store().Get("kernel/k")
				for _, d := range e.Deltas {
					if d.Epoch == results[0].Kernel.Epoch {
						t.Logf("agent %d now holds: %s epoch %d by %s at %v", i, d.Op, d.Epoch, shortID(d.Stamp.Node), d.Stamp.HLC)
					}
				}
				p99, n := as[i].rep.GossipDelayP99()
				t.Logf("agent %d delay p99 %v over %d samples", i, p99, n)
				t.Fatalf("round %d: agent %d names holder %s, winner is %s", round, i, shortID(r.Kernel.Holder), shortID(winner))
			}
		}
		// Every agent agrees on the holder; then the winner releases and
		// the release reaches everyone before the next round.
		epoch := results[0].Kernel.Epoch
		eventually(t, 10*time.Second, "holder agreed", func() error {
			for _, a := range as {
				if k, _ := a.KernelGet(ctx, "k"); k.Holder != winner || k.Epoch != epoch || !k.Live {
					return fmt.Errorf("round %d: %s sees %+v", round, shortID(a.ID()), k)
				}
			}
			return nil
		})
		for _, a := range as {
			if a.ID() == winner {
				if _, err := a.KernelRelease(ctx, "k"); err != nil {
					t.Fatal(err)
				}
			}
		}
		eventually(t, 10*time.Second, "release seen everywhere", func() error {
			for _, a := range as {
				if k, _ := a.KernelGet(ctx, "k"); k.Live {
					return fmt.Errorf("round %d: %s still sees %+v", round, shortID(a.ID()), k)
				}
			}
			return nil
		})
	}
}

func TestKernelRenewReleaseAndDenial(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, func(c *config.Config) { c.Settle = 100 * time.Millisecond; c.MaxSkew = 200 * time.Millisecond })
	res, err := as[0].KernelClaim(ctx, "jup", rpc.KernelClaim{TTLMillis: 800, Job: "nb1"})
	if err != nil || !res.Granted || res.Kernel.Epoch != 1 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	eventually(t, 5*time.Second, "lease visible", func() error {
		if k, _ := as[1].KernelGet(ctx, "jup"); k.Holder != as[0].ID() {
			return fmt.Errorf("as[1] sees %+v", k)
		}
		return nil
	})
	res, err = as[1].KernelClaim(ctx, "jup", rpc.KernelClaim{})
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
	if _, err := as[0].KernelRelease(ctx, "jup"); err != nil {
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
	events := make(chan rpc.Event, 64)
	go func() {
		_ = as[2].Watch(wctx, "kernel/jup", func(ev rpc.Event) error {
			if ev.Op == "lease" {
				events <- ev
			}
			return nil
		})
	}()
	eventually(t, 5*time.Second, "watcher registered", func() error {
		if as[2].store.Watchers() < 3 { // task loop, lease loop, this watch
			return fmt.Errorf("%d watchers", as[2].store.Watchers())
		}
		return nil
	})
	res, err = as[2].KernelClaim(ctx, "jup", rpc.KernelClaim{TTLMillis: 300})
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
		res, err := as[1].KernelClaim(ctx, "jup", rpc.KernelClaim{})
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
