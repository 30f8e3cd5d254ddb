package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shiftClock is a wall clock whose offset a test can change at run time.
type shiftClock struct{ off atomic.Int64 }

func (c *shiftClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func TestSkewedClocksWithinBoundConverge(t *testing.T) {
	ctx := context.Background()
	offsets := []time.Duration{1500 * time.Millisecond, -1500 * time.Millisecond, 0, 0}
	clocks := make([]*shiftClock, len(offsets))
	as := startClusterOpts(t, len(offsets), func(c *config.Config) { c.AntiEntropy = 300 * time.Millisecond }, func(i int) Options {
		clocks[i] = &shiftClock{}
		return Options{Clock: clocks[i]}
	})
	// Skew the clocks once the cluster has formed. (The +1.5 s and -1.5 s
	// agents are 3 s apart, beyond the 2 s bound, so each refuses the
	// other's fresh heartbeats for good.)
	for i, off := range offsets {
		clocks[i].off.Store(int64(off))
	}
	for round := range 5 {
		for i, a := range as {
			if _, err := a.BlacklistAdd(ctx, "skew", fmt.Sprint(round), rpc.BlacklistAdd{Reason: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := as[round%len(as)].BlacklistRemove(ctx, "skew", fmt.Sprint(round)); err != nil {
			t.Fatal(err)
		}
	}
	// The +1.5 s agent is 3 s ahead of the -1.5 s one: gossip from it is
	// refused there at first, and anti-entropy delivers it once its stamps
	// are within max_skew of that clock.
	eventually(t, 15*time.Second, "identical state on skewed agents", func() error { return sameState(as, "bl/") })
}

func TestClockFarAheadIsRefusedAndReported(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	fast := func(c *config.Config) {
		c.Heartbeat, c.SuspectAfter, c.DeadAfter = 200*time.Millisecond, 600*time.Millisecond, 1200*time.Millisecond
	}
	as := startCluster(t, 3, fast)
	ahead := joinAgent(t, as, fast, Options{
		Clock:  clock.Offset{Base: clock.System{}, Offset: 10 * time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if _, err := ahead.BlacklistAdd(ctx, "fast", "x", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes refused and counted by every peer", func() error {
		for _, a := range as {
			if n := a.Gossip().Rejections()[replica.ReasonClockSkew]; n == 0 {
				return fmt.Errorf("%s counted no clock-skew rejections", shortID(a.ID()))
			}
		}
		return nil
	})
	for _, a := range as {
		if _, ok, _ := a.BlacklistHas(ctx, "fast", "x"); ok {
			t.Fatalf("%s accepted a write stamped 10 s in its future", shortID(a.ID()))
		}
	}
	eventually(t, 10*time.Second, "the fast agent says so in its log", func() error {
		if !strings.Contains(logs.String(), "clock looks ahead") {
			return fmt.Errorf("log so far: %q", logs.String())
		}
		return nil
	})
	// Its messages are refused, yet they prove it alive: over twice
	// dead_after, every peer must keep it alive.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		for _, a := range as {
			if st := a.mon.Table().State(ahead.ID()); st != membership.Alive {
				t.Fatalf("%s has the live, fast-clocked agent %s, want alive", shortID(a.ID()), st)
			}
		}
		time.Sleep(50 * time.Millisecond) // polling that a state holds over a window
	}
}

// An agent whose clock is set back keeps stamping from its HLC, which stays
// ahead of the new wall time. A lease's TTL must count from the stamp, or
// the claim expires before its own stamp: every peer refuses it while its
// writer keeps it, and the cluster diverges for good (found by make chaos).
func TestClaimAfterClockSetBackIsAcceptedByPeers(t *testing.T) {
	ctx := context.Background()
	clocks := make([]*shiftClock, 2)
	as := startClusterOpts(t, 2, func(c *config.Config) { c.Settle = 50 * time.Millisecond }, func(i int) Options {
		clocks[i] = &shiftClock{}
		return Options{Clock: clocks[i]}
	})
	a, b := as[0], as[1]
	if _, err := a.BlacklistAdd(ctx, "l", "x", rpc.BlacklistAdd{}); err != nil { // the HLC reaches the present
		t.Fatal(err)
	}
	clocks[0].off.Store(int64(-1500 * time.Millisecond)) // within max_skew of b, behind a's own HLC
	res, err := a.KernelClaim(ctx, "gpu", rpc.KernelClaim{TTLMillis: 1000})
	if err != nil || !res.Granted {
		t.Fatalf("claim: %+v %v", res, err)
	}
	eventually(t, 5*time.Second, "b holds a's claim", func() error {
		if k, _ := b.KernelGet(ctx, "gpu"); k.Holder != a.ID() || k.Epoch != 1 {
			return fmt.Errorf("b sees %+v; rejections %v", k, b.Gossip().Rejections())
		}
		return nil
	})
	if n := b.Gossip().Rejections()[replica.ReasonBadValue]; n != 0 {
		t.Fatalf("b rejected %d deltas as bad values", n)
	}
}
