package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
	eventually(t, 10*time.Second, "writes refused and counted by every peer", func() error {
		if _, err := ahead.BlacklistAdd(ctx, "fast", "x", rpc.BlacklistAdd{}); err != nil {
			return err
		}
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
	// Its writes are refused, yet it answers probes, judged on local
	// time: over twice dead_after, every peer must keep it alive.
	eventually(t, 10*time.Second, "every peer probed the fast agent", func() error {
		for _, a := range as {
			if st := a.mon.Table().State(ahead.ID()); st != membership.Alive {
				return fmt.Errorf("%s has it %s", shortID(a.ID()), st)
			}
		}
		return nil
	})
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		for _, a := range as {
			if st := a.mon.Table().State(ahead.ID()); st != membership.Alive {
				t.Fatalf("%s has the live, fast-clocked agent %s, want alive", shortID(a.ID()), st)
			}
		}
		time.Sleep(50 * time.Millisecond) // polling that a state holds over a window
	}
}
