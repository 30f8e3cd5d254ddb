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
	// Only gossip is a sign of life (anti-entropy may bring b's write
	// first, and that says nothing of b now): write until a has heard b.
	eventually(t, 20*time.Second, "a heard b's write by gossip", func() error {
		if _, err := b.ServiceSet(ctx, "api", "b", rpc.ServiceSet{Status: "up", Addr: "10.0.0.2:80"}); err != nil {
			return err
		}
		if s := a.mon.Table().State(b.ID()); s == 0 {
			return fmt.Errorf("a has not heard b (sees it %s)", s)
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
