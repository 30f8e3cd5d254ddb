package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
)

// TestConvergenceProbe: in a cluster of three, every agent reports the
// heartbeat lag of both others, with a sane p50.
func TestConvergenceProbe(t *testing.T) {
	agents := startCluster(t, 3, func(c *config.Config) { c.Heartbeat = 200 * time.Millisecond })
	ctx := context.Background()
	eventually(t, 15*time.Second, "lag samples from every peer", func() error {
		for _, a := range agents {
			st, err := a.Status(ctx)
			if err != nil {
				return err
			}
			got := make(map[string]bool)
			for _, l := range st.Lag {
				got[l.Node] = true
				if l.Samples < 3 {
					return fmt.Errorf("%s: %d samples from %s", shortID(a.ID()), l.Samples, shortID(l.Node))
				}
				// Same host and clock: the lag is the delivery time.
				if l.P50Millis < 0 || l.P50Millis > 2000 || l.P99Millis < l.P50Millis {
					return fmt.Errorf("%s: lag of %s: p50 %d ms, p99 %d ms", shortID(a.ID()), shortID(l.Node), l.P50Millis, l.P99Millis)
				}
			}
			for _, b := range agents {
				if want := b != a; got[b.ID()] != want {
					return fmt.Errorf("%s: lag reported for %s: %v, want %v (%+v)", shortID(a.ID()), shortID(b.ID()), got[b.ID()], want, st.Lag)
				}
			}
		}
		return nil
	})
}
