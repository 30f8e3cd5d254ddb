package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

func fastDetector(c *config.Config) {
	c.Heartbeat, c.SuspectAfter, c.DeadAfter = 100*time.Millisecond, 400*time.Millisecond, time.Second
}

func memberState(t *testing.T, a *Agent, id string) string {
	ms, err := a.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Node == id {
			return m.State
		}
	}
	return "absent"
}

func TestDeadNodeServicesShowDownAndComeBack(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 4, fastDetector)
	victim := as[3]
	if _, err := victim.ServiceSet(ctx, "api", "v1", rpc.ServiceSet{Status: "up", Addr: "10.0.0.9:80"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "service up everywhere", func() error {
		for _, a := range as[:3] {
			if s, err := a.ServiceGet(ctx, "api", "v1"); err != nil || !s.Up || s.OwnerState != "alive" {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), s, err)
			}
		}
		return nil
	})
	dataDir := victim.cfg.DataDir
	victim.Close()
	closed := time.Now()
	eventually(t, 10*time.Second, "victim dead and its service down everywhere", func() error {
		for _, a := range as[:3] {
			if st := memberState(t, a, victim.ID()); st != "dead" {
				return fmt.Errorf("%s sees the victim %s", shortID(a.ID()), st)
			}
			s, err := a.ServiceGet(ctx, "api", "v1")
			if err != nil || s.Up || s.Status != "down" || s.Reported != "up" || s.OwnerState != "dead" {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), s, err)
			}
			if up, _ := a.ServiceList(ctx, "api", true); len(up) != 0 {
				return fmt.Errorf("%s: svc ls --up shows %+v", shortID(a.ID()), up)
			}
			if all, _ := a.ServiceList(ctx, "api", false); len(all) != 1 {
				return fmt.Errorf("%s: svc ls shows %d entries", shortID(a.ID()), len(all))
			}
		}
		return nil
	})
	// Dead means dead_after (1 s) of silence since the last heartbeat,
	// which came up to one heartbeat (100 ms) before the close.
	if d := time.Since(closed); d < 900*time.Millisecond {
		t.Fatalf("declared dead %v after the close, before dead_after (1s) minus a heartbeat", d)
	}
	t.Logf("failure detected everywhere %v after the victim stopped (dead_after 1s)", time.Since(closed).Round(10*time.Millisecond))

	// The same node (same identity) comes back: alive again, and its entry
	// stands again without anyone having rewritten it.
	cfg := config.LocalConfig(dataDir)
	fastDetector(&cfg)
	cfg.Bootstrap = as[0].Addrs()
	back, err := New(cfg, Options{Rand: rand.New(rand.NewPCG(9, 9)), NoSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	if back.ID() != victim.ID() {
		t.Fatalf("restarted with a new identity %s, want %s", back.ID(), victim.ID())
	}
	eventually(t, 10*time.Second, "victim alive again, service up", func() error {
		for _, a := range as[:3] {
			if st := memberState(t, a, victim.ID()); st != "alive" {
				return fmt.Errorf("%s sees the victim %s", shortID(a.ID()), st)
			}
			if s, err := a.ServiceGet(ctx, "api", "v1"); err != nil || !s.Up {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), s, err)
			}
		}
		return nil
	})
}

// A peer that goes silent but still answers on its connection (a slow or
// starved node, not a cut link) keeps its connection: the suspect verdict
// pings it before closing anything, so an overloaded cluster does not add
// reconnect handshakes to its load.
func TestSilentPeerThatAnswersKeepsItsConnection(t *testing.T) {
	ctx := context.Background()
	start := func(cfg config.Config, seed uint64) *Agent {
		a, err := New(cfg, Options{Rand: rand.New(rand.NewPCG(seed, 7)), NoSocket: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	cfgA := config.LocalConfig(t.TempDir())
	fastDetector(&cfgA)
	a := start(cfgA, 1)
	// b never heartbeats within the test: it is heard once, by its write,
	// and then stays silent while its connection works.
	cfgB := config.LocalConfig(t.TempDir())
	cfgB.Heartbeat, cfgB.SuspectAfter, cfgB.DeadAfter = time.Hour, 2*time.Hour, 3*time.Hour
	cfgB.Bootstrap = a.Addrs()
	b := start(cfgB, 2)
	eventually(t, 20*time.Second, "a and b connected", func() error {
		if len(a.Gossip().Peers()) < 1 || len(b.Gossip().Peers()) < 1 {
			return fmt.Errorf("peers: a %d, b %d", len(a.Gossip().Peers()), len(b.Gossip().Peers()))
		}
		return nil
	})
	eventually(t, 20*time.Second, "a holds b's write", func() error {
		if _, err := b.ServiceSet(ctx, "api", "b", rpc.ServiceSet{Status: "up", Addr: "10.0.0.2:80"}); err != nil {
			return err
		}
		if _, err := a.ServiceGet(ctx, "api", "b"); err != nil {
			return err
		}
		return nil
	})
	eventually(t, 20*time.Second, "a suspects b and b answers a ping", func() error {
		if kept, closed := a.mon.Probes(); kept == 0 {
			return fmt.Errorf("kept %d, closed %d; a sees b %s", kept, closed, memberState(t, a, b.ID()))
		}
		return nil
	})
	if _, n := a.mon.Probes(); n != 0 {
		t.Fatalf("a closed its connection to b %d times though b answered", n)
	}
	if got := len(a.Gossip().Peers()); got != 1 {
		t.Fatalf("a has %d peers after probing b, want 1 (connection kept)", got)
	}
}
