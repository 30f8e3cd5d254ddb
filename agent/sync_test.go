package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

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

func TestAntiEntropyConvergesWithoutGossip(t *testing.T) {
	ctx := context.Background()
	fastAE := func(c *config.Config) { c.AntiEntropy = 200 * time.Millisecond }
	as := startCluster(t, 3, fastAE)
	deaf := joinAgent(t, as, fastAE, Options{DropGossip: func(string) bool { return true }})
	for i := range 200 {
		if _, err := as[i%3].BlacklistAdd(ctx, "l", fmt.Sprint(i), rpc.BlacklistAdd{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := as[1].BlacklistRemove(ctx, "l", "7"); err != nil {
		t.Fatal(err)
	}
	want := 199
	eventually(t, 15*time.Second, "the deaf agent has every write", func() error {
		l, _ := deaf.BlacklistList(ctx, "l")
		if len(l) != want {
			return fmt.Errorf("deaf agent lists %d of %d", len(l), want)
		}
		return sameState(append(as, deaf), "bl/")
	})
	// Its own writes still spread by gossip.
	if _, err := deaf.BlacklistAdd(ctx, "l", "from-deaf", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the deaf agent's write everywhere", func() error {
		for _, a := range as {
			if _, ok, _ := a.BlacklistHas(ctx, "l", "from-deaf"); !ok {
				return fmt.Errorf("%s lacks it", shortID(a.ID()))
			}
		}
		return nil
	})
	if st, _ := deaf.Status(ctx); st.AntiEntropy.Repaired < uint64(want) {
		t.Fatalf("anti-entropy repaired %d deltas, want at least %d", st.AntiEntropy.Repaired, want)
	}
}

func TestNewAgentCatchesUpOn10KKeys(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, nil)
	const keys = 10_000
	for i := range keys {
		if _, err := as[i%3].BlacklistAdd(ctx, "big", fmt.Sprint(i), rpc.BlacklistAdd{Reason: "bulk"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "cluster holds every key", func() error {
		for _, a := range as {
			if n := len(a.Store().List("bl/big/")); n != keys {
				return fmt.Errorf("%s holds %d", shortID(a.ID()), n)
			}
		}
		return nil
	})
	start := time.Now()
	late := joinAgent(t, as, nil, Options{})
	eventually(t, 30*time.Second, "late joiner holds every key", func() error {
		if n := len(late.Store().List("bl/big/")); n != keys {
			return fmt.Errorf("late joiner holds %d", n)
		}
		return nil
	})
	t.Logf("a new agent had all %d keys %v after it started", keys, time.Since(start).Round(time.Millisecond))
}
