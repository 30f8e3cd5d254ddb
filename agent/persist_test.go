package agent

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

func startAlone(t *testing.T, cfg config.Config, opts Options) *Agent {
	t.Helper()
	opts.NoSocket = true
	opts.Rand = rand.New(rand.NewPCG(1, 2))
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func maxStamp(a *Agent) crdt.Stamp {
	var m crdt.Stamp
	for _, e := range a.Store().List("") {
		for _, d := range e.Deltas {
			if d.Stamp.Node == a.ID() && m.Less(d.Stamp) {
				m = d.Stamp
			}
		}
	}
	return m
}

func TestRestartServesStateResumesLeasesNeverReusesStamps(t *testing.T) {
	ctx := context.Background()
	cfg := config.LocalConfig(t.TempDir())
	cfg.Settle = 20 * time.Millisecond
	a := startAlone(t, cfg, Options{})
	for _, id := range []string{"u1", "u2", "u3"} {
		if _, err := a.BlacklistAdd(ctx, "l", id, rpc.BlacklistAdd{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.BlacklistRemove(ctx, "l", "u2"); err != nil {
		t.Fatal(err)
	}
	if r, err := a.KernelClaim(ctx, "k", rpc.KernelClaim{Keep: true, TTLMillis: 3000}); err != nil || !r.Granted {
		t.Fatalf("claim: %+v %v", r, err)
	}
	before := maxStamp(a)
	id := a.ID()
	a.Crash() // a graceful stop would release the lease

	b := startAlone(t, cfg, Options{})
	if b.ID() != id {
		t.Fatalf("identity changed across restart")
	}
	// Served at once, from disk: no peer exists to resync from.
	if l, _ := b.BlacklistList(ctx, "l"); len(l) != 2 {
		t.Fatalf("after restart: %+v", l)
	}
	if _, err := b.BlacklistAdd(ctx, "l", "u4", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	if after := maxStamp(b); !before.Less(after) {
		t.Fatalf("stamp after restart %v is not after %v", after, before)
	}
	// The lease is still ours and renewed by the restarted agent.
	eventually(t, 5*time.Second, "lease renewed after restart", func() error {
		k, err := b.KernelGet(ctx, "k")
		if err != nil || k.Holder != id || !k.Live || time.Until(k.Expires) < 0 {
			t.Fatalf("kernel after restart: %+v %v", k, err)
		}
		if l := b.kernels.Lease(crdt.KernelKey("k")); l.Renewed.IsZero() || !before.Less(l.Renewed) {
			return errNotYet
		}
		return nil
	})
}

func TestAwayLongerThanHorizonResets(t *testing.T) {
	ctx := context.Background()
	cfg := config.LocalConfig(t.TempDir())
	cfg.TombstoneHorizon = time.Minute
	a := startAlone(t, cfg, Options{})
	if _, err := a.BlacklistAdd(ctx, "l", "x", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// Back two minutes later (by its clock): its state is reset, not merged.
	b := startAlone(t, cfg, Options{Clock: clock.Offset{Base: clock.System{}, Offset: 2 * time.Minute}})
	if n := b.Store().Len(); n != 1 { // only its own fresh heartbeat
		t.Fatalf("state after a long absence has %d keys: %v", n, b.Store().List(""))
	}
	if _, err := b.BlacklistAdd(ctx, "l", "y", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// Back within the horizon: state kept.
	c := startAlone(t, cfg, Options{Clock: clock.Offset{Base: clock.System{}, Offset: 2*time.Minute + time.Second}})
	if _, ok, _ := c.BlacklistHas(ctx, "l", "y"); !ok {
		t.Fatal("state lost on a restart within the horizon")
	}
}
