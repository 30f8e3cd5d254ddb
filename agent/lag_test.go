package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// TestConvergenceProbe: in a cluster of three that all write, every
// agent reports the lag of both others' writes, with a sane p50.
func TestConvergenceProbe(t *testing.T) {
	agents := startCluster(t, 3, nil)
	ctx := context.Background()
	n := 0
	eventually(t, 15*time.Second, "lag samples from every peer", func() error {
		n++
		for _, a := range agents {
			if _, err := a.ServiceSet(ctx, "lag", fmt.Sprint(shortID(a.ID()), n), rpc.ServiceSet{Status: "up"}); err != nil {
				return err
			}
		}
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
