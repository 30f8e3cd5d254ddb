package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
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

// TestQuietPeersStayAliveAndACrashIsDetected: agents that write nothing
// stay alive in each other's views (probes, not gossiped heartbeats, keep
// them so, and no one accuses anyone), and a crashed one is accused and
// dead on every other agent, its incarnation recorded.
func TestQuietPeersStayAliveAndACrashIsDetected(t *testing.T) {
	ctx := context.Background()
	var agents []*Agent
	for i := range 3 {
		opts := Options{Rand: rand.New(rand.NewPCG(uint64(i), 7)), NoSocket: true}
		if i == 1 {
			// A clock behind its peers' (within max_skew) changes nothing:
			// probe deadlines are network time, not the agent's clock.
			opts.Clock = clock.Offset{Base: clock.System{}, Offset: -1500 * time.Millisecond}
		}
		cfg := config.LocalConfig(t.TempDir())
		fastDetector(&cfg)
		if i > 0 {
			cfg.Bootstrap = agents[0].Addrs()
		}
		a, err := New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		agents = append(agents, a)
	}
	alive := func() error {
		for _, a := range agents {
			for _, b := range agents {
				if s := memberState(t, a, b.ID()); s != "alive" {
					return fmt.Errorf("%s sees %s %s", shortID(a.ID()), shortID(b.ID()), s)
				}
			}
		}
		return nil
	}
	eventually(t, 20*time.Second, "every agent sees every agent alive", alive)
	// Ten probe periods without a write: every agent keeps answering.
	a1 := agents[1].mon.Counters()
	eventually(t, 20*time.Second, "ten probe periods", func() error {
		if c := agents[1].mon.Counters(); c.ProbesReceived < a1.ProbesReceived+10 {
			return fmt.Errorf("agent 1 answered %d probes", c.ProbesReceived-a1.ProbesReceived)
		}
		return alive()
	})
	for _, a := range agents {
		if c := a.mon.Counters(); c.Accusations != 0 {
			t.Fatalf("%s accused a live peer %d times", shortID(a.ID()), c.Accusations)
		}
	}
	// An accusation of a live agent is refuted: it announces a higher
	// incarnation (its entry, gossiped to every agent; a ping's answer
	// also carries it to the prober), and the accuser holds it alive at
	// that one.
	accused := agents[1]
	before := accused.mon.Incarnation()
	if _, _, err := agents[0].write(crdt.Delta{Key: crdt.SuspectKey(accused.ID(), agents[0].ID()), Op: crdt.OpPut,
		Value: crdt.Encode(crdt.SuspectValue{Inc: before})}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the accused agent refutes", func() error {
		p, _ := agents[0].mon.Table().Get(accused.ID())
		if p.Inc <= before || p.State != membership.Alive {
			return fmt.Errorf("agent 0 holds it %+v; its incarnation was %d", p, before)
		}
		e, _ := agents[2].Store().Get(crdt.NodeKey(accused.ID()))
		var v crdt.MemberValue
		if err := crdt.Decode(e.Winner().Value, &v); err != nil || v.Inc <= before {
			return fmt.Errorf("agent 2 holds its entry at incarnation %d (%v), was %d", v.Inc, err, before)
		}
		return nil
	})
	crashed := agents[2]
	inc := crashed.mon.Incarnation()
	if err := crashed.Crash(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the crashed agent dead on both others", func() error {
		for _, a := range agents[:2] {
			if s := memberState(t, a, crashed.ID()); s != "dead" {
				return fmt.Errorf("%s sees it %s", shortID(a.ID()), s)
			}
		}
		return nil
	})
	for _, a := range agents[:2] {
		if p, _ := a.mon.Table().Get(crashed.ID()); p.Inc != inc || p.Accusers == 0 {
			t.Fatalf("%s: %+v, want incarnation %d and an accuser", shortID(a.ID()), p, inc)
		}
	}
}
