package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// session is a kernel session run by a test: its events, in order.
type session struct {
	events chan rpc.SessionEvent
	cancel context.CancelFunc
	done   chan error
}

func openSession(a *Agent, id string, req rpc.KernelClaim) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{events: make(chan rpc.SessionEvent, 64), cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- a.KernelSession(ctx, id, req, func(ev rpc.SessionEvent) error {
			s.events <- ev
			return nil
		})
	}()
	return s
}

// next returns the session's next event other than skip.
func (s *session) next(t *testing.T, skip ...string) rpc.SessionEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		var ev rpc.SessionEvent
		select {
		case ev = <-s.events:
		case err := <-s.done:
			// The session sent its last events before it ended.
			select {
			case ev = <-s.events:
				s.done <- err
			default:
				t.Fatalf("session ended: %v", err)
			}
		case <-timeout:
			t.Fatal("no session event within 20s")
		}
		if !contains(skip, ev.Event) {
			return ev
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// end closes the session as its client going away would, and waits.
func (s *session) end(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("session: %v", err)
	}
}

func shortLeases(c *config.Config) {
	c.Settle, c.LeaseMargin, c.MaxSkew = 50*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
}

// TestTwoSessionsOnOneHostAreTwoClaimants: a second session of the same
// agent is denied, cannot renew or release the first's lease, nor can a
// one-shot claim; when the first session's client goes away the lease is
// released at once (not after its TTL), and a waiting session gets it.
func TestTwoSessionsOnOneHostAreTwoClaimants(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, shortLeases)
	a := as[0]
	first := openSession(a, "gpu", rpc.KernelClaim{TTLMillis: 60_000})
	g := first.next(t)
	if g.Event != rpc.SessionGranted || g.Session == "" || g.Kernel.Epoch != 1 || g.TTLMillis != 60_000 || g.MarginMillis != 100 {
		t.Fatalf("first session: %+v", g)
	}
	second := openSession(a, "gpu", rpc.KernelClaim{TTLMillis: 60_000})
	if ev := second.next(t); ev.Event != rpc.SessionDenied || ev.Kernel.Holder != a.ID() {
		t.Fatalf("second session on the same host: %+v", ev)
	}
	if res, err := a.KernelClaim(ctx, "gpu", rpc.KernelClaim{TTLMillis: 60_000}); err != nil || res.Granted {
		t.Fatalf("one-shot claim of a session's kernel: %+v %v", res, err)
	}
	if _, err := a.KernelRenew(ctx, "gpu", rpc.KernelRenew{Session: "not-it"}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("renew by another session: %v", err)
	}
	if _, err := a.KernelRelease(ctx, "gpu", rpc.KernelRelease{}); rpc.CodeOf(err) != rpc.CodeDenied || !strings.Contains(err.Error(), g.Session) {
		t.Fatalf("one-shot release of a session's lease: %v", err)
	}
	if k, err := a.KernelRenew(ctx, "gpu", rpc.KernelRenew{Session: g.Session, TTLMillis: 60_000}); err != nil || !k.Live {
		t.Fatalf("keepalive: %+v %v", k, err)
	}
	if ev := first.next(t); ev.Event != rpc.SessionRenewed {
		t.Fatalf("after a keepalive: %+v", ev)
	}
	waiter := openSession(as[1], "gpu", rpc.KernelClaim{TTLMillis: 60_000, WaitMillis: 30_000})
	if ev := waiter.next(t); ev.Event != rpc.SessionWaiting || ev.Kernel.Holder != a.ID() {
		t.Fatalf("waiter: %+v", ev)
	}
	released := time.Now()
	first.end(t)
	// Released (the waiter's claim of epoch 2 may be back already).
	if k, _ := a.KernelGet(ctx, "gpu"); !k.Released && k.Epoch == 1 {
		t.Fatalf("session ended, lease not released: %+v", k)
	}
	ev := waiter.next(t)
	if ev.Event != rpc.SessionGranted || ev.Kernel.Holder != as[1].ID() || ev.Kernel.Epoch != 2 {
		t.Fatalf("waiter after release: %+v", ev)
	}
	if d := time.Since(released); d > 10*time.Second {
		t.Fatalf("waiter granted %v after the release, a 60 s lease", d)
	}
	waiter.end(t)
}

// TestSessionWithoutKeepalivesExpires: the agent renews a session's lease
// only on its keepalives; without them it runs out after its TTL and the
// session hears it.
func TestSessionWithoutKeepalivesExpires(t *testing.T) {
	a := startCluster(t, 1, shortLeases)[0]
	s := openSession(a, "k", rpc.KernelClaim{TTLMillis: 600})
	g := s.next(t)
	if g.Event != rpc.SessionGranted {
		t.Fatalf("%+v", g)
	}
	if ev := s.next(t); ev.Event != rpc.SessionExpired || ev.Kernel.Epoch != g.Kernel.Epoch {
		t.Fatalf("without keepalives: %+v", ev)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("session after expiry: %v", err)
	}
}

// TestOneShotClaimIsNotRenewedUnlessKept: a one-shot claim runs out after
// its TTL; with keep, the agent renews it until released.
func TestOneShotClaimIsNotRenewedUnlessKept(t *testing.T) {
	ctx := context.Background()
	a := startCluster(t, 1, shortLeases)[0]
	for _, id := range []string{"plain", "kept"} {
		if res, err := a.KernelClaim(ctx, id, rpc.KernelClaim{TTLMillis: 600, Keep: id == "kept"}); err != nil || !res.Granted {
			t.Fatalf("claim %s: %+v %v", id, res, err)
		}
	}
	eventually(t, 10*time.Second, "the plain claim expired", func() error {
		if k, _ := a.KernelGet(ctx, "plain"); k.Live {
			return errNotYet
		}
		return nil
	})
	if k, _ := a.KernelGet(ctx, "kept"); !k.Live {
		t.Fatalf("kept claim: %+v", k)
	}
}

// TestLeaseTTLFloor: a TTL below the settle bound plus lease_margin is
// refused, with the minimum in the error, and changes nothing.
func TestLeaseTTLFloor(t *testing.T) {
	ctx := context.Background()
	a := startCluster(t, 1, shortLeases)[0]
	_, err := a.KernelClaim(ctx, "k", rpc.KernelClaim{TTLMillis: 149})
	if rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), "minimum lease TTL 150ms") {
		t.Fatalf("claim below the floor: %v", err)
	}
	if _, ok := a.Store().Get(crdt.KernelKey("k")); ok {
		t.Fatal("a refused claim wrote a record")
	}
	if res, err := a.KernelClaim(ctx, "k", rpc.KernelClaim{TTLMillis: 150}); err != nil || !res.Granted {
		t.Fatalf("claim at the floor: %+v %v", res, err)
	}
	cfg := config.LocalConfig(t.TempDir())
	cfg.LeaseTTL, cfg.SettleMax = time.Second, 2*time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "minimum lease TTL 2.5s") {
		t.Fatalf("lease_ttl below the floor: %v", err)
	}
}

// TestForceReleaseFreesAStuckHolder: an operator on another node frees a
// kernel that a session holds; the holder's session hears "lost", the
// record says who forced it and which epoch, and the kernel is free.
func TestForceReleaseFreesAStuckHolder(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, shortLeases)
	s := openSession(as[0], "gpu", rpc.KernelClaim{TTLMillis: 60_000})
	if ev := s.next(t); ev.Event != rpc.SessionGranted {
		t.Fatalf("%+v", ev)
	}
	eventually(t, 10*time.Second, "claim seen by the operator's node", func() error {
		if k, _ := as[1].KernelGet(ctx, "gpu"); k.Holder != as[0].ID() || !k.Live {
			return errNotYet
		}
		return nil
	})
	k, err := as[1].KernelRelease(ctx, "gpu", rpc.KernelRelease{Force: true, Reason: "holder hung"})
	if err != nil || k.Live || !k.Released || k.Epoch != 2 || k.Holder != as[1].ID() {
		t.Fatalf("forced release: %+v %v", k, err)
	}
	want := "forced release of epoch 1 (held by " + as[0].ID() + ") by " + as[1].ID() + ": holder hung"
	if k.Job != want {
		t.Fatalf("record: %q, want %q", k.Job, want)
	}
	if ev := s.next(t, rpc.SessionRenewed); ev.Event != rpc.SessionLost {
		t.Fatalf("holder's session: %+v", ev)
	}
	res, err := as[0].KernelClaim(ctx, "gpu", rpc.KernelClaim{TTLMillis: 60_000})
	if err != nil || !res.Granted || res.Kernel.Epoch != 3 {
		t.Fatalf("claim after the forced release: %+v %v", res, err)
	}
}

// TestGracefulStopReleasesCrashDoesNot: Close releases the agent's leases,
// so another node may claim them at once; after a crash, a restarted agent
// releases a session's lease (its client lost its stream) and renews a
// kept one-shot lease.
func TestGracefulStopReleasesCrashDoesNot(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, shortLeases)
	if res, err := as[0].KernelClaim(ctx, "kept", rpc.KernelClaim{TTLMillis: 60_000, Keep: true}); err != nil || !res.Granted {
		t.Fatalf("%+v %v", res, err)
	}
	as[0].Close()
	eventually(t, 10*time.Second, "release on stop seen by the other node", func() error {
		if k, _ := as[1].KernelGet(ctx, "kept"); !k.Released {
			return errNotYet
		}
		return nil
	})

	cfg := config.LocalConfig(t.TempDir())
	shortLeases(&cfg)
	a := startAlone(t, cfg, Options{})
	s := openSession(a, "sess", rpc.KernelClaim{TTLMillis: 60_000})
	if ev := s.next(t); ev.Event != rpc.SessionGranted {
		t.Fatalf("%+v", ev)
	}
	if res, err := a.KernelClaim(ctx, "kept", rpc.KernelClaim{TTLMillis: 60_000, Keep: true}); err != nil || !res.Granted {
		t.Fatalf("%+v %v", res, err)
	}
	a.Crash()
	<-s.done
	b := startAlone(t, cfg, Options{})
	if k, _ := b.KernelGet(ctx, "sess"); !k.Released {
		t.Fatalf("a session's lease after a crash and restart: %+v", k)
	}
	if k, _ := b.KernelGet(ctx, "kept"); !k.Live || k.Released {
		t.Fatalf("a kept lease after a crash and restart: %+v", k)
	}
}

// TestRunOnceSlot: the first session of a slot marks it running; once
// done, a later session of the slot, on another node, is told so.
func TestRunOnceSlot(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, shortLeases)
	s := openSession(as[0], "cron", rpc.KernelClaim{TTLMillis: 60_000, Once: "nightly-1"})
	g := s.next(t)
	if g.Event != rpc.SessionGranted || g.Once == nil || g.Once.State != "running" || g.Once.Owner != as[0].ID() {
		t.Fatalf("first run: %+v", g)
	}
	if _, err := as[0].TaskUpdate(ctx, rpc.OnceTask("cron", "nightly-1"), rpc.TaskUpdate{State: "done", Result: "exit 0"}); err != nil {
		t.Fatal(err)
	}
	s.end(t)
	// The release may reach the other node before the slot's record: the
	// grant fetches the record from its peers.
	late := openSession(as[1], "cron", rpc.KernelClaim{TTLMillis: 60_000, Once: "nightly-1", WaitMillis: 20_000})
	ev := late.next(t, rpc.SessionWaiting)
	if ev.Event != rpc.SessionGranted || ev.Once == nil || ev.Once.State != "done" || ev.Once.Owner != as[0].ID() {
		t.Fatalf("late replica: %+v", ev)
	}
	late.end(t)
	if err := as[0].KernelSession(ctx, "cron", rpc.KernelClaim{Once: "a/b"}, func(rpc.SessionEvent) error { return nil }); rpc.CodeOf(err) != rpc.CodeBadRequest {
		t.Fatalf("slot with '/': %v", err)
	}
}

// TestWaitersAreGrantedInTurn: waiters on three nodes are granted in the
// order they began to wait, one at a time: a release makes only the head
// of the queue claim (no herd: one claim record per epoch), a one-shot
// claim does not jump the queue, and the queue shows in KernelGet.
func TestWaitersAreGrantedInTurn(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, shortLeases)
	holder := openSession(as[0], "gpu", rpc.KernelClaim{TTLMillis: 60_000})
	if ev := holder.next(t); ev.Event != rpc.SessionGranted {
		t.Fatalf("%+v", ev)
	}
	// Waiters, each queued (seen by every node) before the next starts.
	order := []*Agent{as[1], as[2], as[0]}
	var waiters []*session
	for i, a := range order {
		s := openSession(a, "gpu", rpc.KernelClaim{TTLMillis: 60_000, WaitMillis: 60_000})
		if ev := s.next(t); ev.Event != rpc.SessionWaiting {
			t.Fatalf("waiter %d: %+v", i, ev)
		}
		waiters = append(waiters, s)
		eventually(t, 10*time.Second, "every node sees the queue", func() error {
			for _, b := range as {
				k, _ := b.KernelGet(ctx, "gpu")
				if len(k.Waiters) != i+1 {
					return errNotYet
				}
				for j, w := range k.Waiters {
					if w.Node != order[j].ID() {
						t.Fatalf("queue on %s: waiter %d is %s, want %s", shortID(b.ID()), j, shortID(w.Node), shortID(order[j].ID()))
					}
				}
			}
			return nil
		})
	}
	prev := holder
	for i, s := range waiters {
		if prev != nil {
			prev.end(t)
		}
		if ev := s.next(t); ev.Event != rpc.SessionGranted || ev.Kernel.Holder != order[i].ID() || ev.Kernel.Epoch != uint64(i+2) {
			t.Fatalf("waiter %d after the release: %+v", i, ev)
		}
		eventually(t, 10*time.Second, "every node holds the same records", func() error { return sameState(as, "kernel/gpu") })
		e, _ := order[i].Store().Get(crdt.KernelKey("gpu"))
		claims := 0
		for _, d := range e.Deltas {
			if d.Op == crdt.OpClaim && d.Epoch == uint64(i+2) {
				claims++
			}
		}
		if claims != 1 {
			t.Fatalf("epoch %d has %d claims: the release woke a herd", i+2, claims)
		}
		prev = s
		if i == 0 {
			// A one-shot claim does not jump the queue, even of a free kernel.
			s.end(t)
			prev = nil
			if res, err := as[2].KernelClaim(ctx, "gpu", rpc.KernelClaim{TTLMillis: 60_000}); err != nil || res.Granted {
				t.Fatalf("a one-shot claim while waiters queue: %+v %v", res, err)
			}
		}
	}
	prev.end(t)
}

// TestClaimOfABusyKernelEnds: a claim that finds a young competing claim
// waits for it to settle once, then answers; a kernel that changes hands
// all the time does not keep it deciding (make chaos saw a 2 s wait take
// 13 s that way).
func TestClaimOfABusyKernelEnds(t *testing.T) {
	ctx := context.Background()
	// The churner's clock runs ahead (within max_skew): each of its claims
	// looks young to the other agent for longer than it lives.
	as := startClusterOpts(t, 2, func(c *config.Config) {
		shortLeases(c)
		c.MaxSkew = 2 * time.Second
	}, func(i int) Options {
		if i == 1 {
			return Options{Clock: clock.Offset{Base: clock.System{}, Offset: time.Second}}
		}
		return Options{}
	})
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if res, err := as[1].KernelClaim(ctx, "busy", rpc.KernelClaim{TTLMillis: 60_000}); err == nil && res.Granted {
				time.Sleep(300 * time.Millisecond) // the holder's work: not synchronization
				_, _ = as[1].KernelRelease(ctx, "busy", rpc.KernelRelease{})
			}
		}
	}()
	defer func() { close(stop); <-churned }()
	for i := range 3 {
		eventually(t, 10*time.Second, "the churner holds the kernel", func() error {
			if k, _ := as[0].KernelGet(ctx, "busy"); k.Holder != as[1].ID() || !k.Live {
				return errNotYet
			}
			return nil
		})
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := as[0].KernelClaim(cctx, "busy", rpc.KernelClaim{TTLMillis: 60_000})
		cancel()
		if err != nil {
			t.Fatalf("claim %d of a busy kernel: %v after %v", i, err, time.Since(start))
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("claim %d of a busy kernel took %v", i, d)
		}
		if res.Granted {
			_, _ = as[0].KernelRelease(ctx, "busy", rpc.KernelRelease{})
		}
	}
}
