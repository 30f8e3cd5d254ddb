package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestLagProbeRing(t *testing.T) {
	p := newLagProbe()
	for i := range 1000 {
		p.observe("b", int64(1000+i), int64(1000+i)+int64(i%100)) // lags 0..99 ms
	}
	p.observe("c", 5000, 4000) // a clock ahead of ours: clamped at 0
	r := p.report()
	if len(r) != 2 || r[0].Node != "b" || r[1].Node != "c" {
		t.Fatalf("report = %+v, want b and c", r)
	}
	// The ring keeps the last 256: lags (744..999)%100.
	if b := r[0]; b.Samples != lagSamples || b.P50Millis < 40 || b.P50Millis > 60 || b.P99Millis < 95 || b.P99Millis > 99 {
		t.Fatalf("b = %+v, want 256 samples, p50 ≈ 50, p99 ≈ 98", b)
	}
	if c := r[1]; c.Samples != 1 || c.P50Millis != 0 || c.P99Millis != 0 {
		t.Fatalf("c = %+v, want one sample of 0", c)
	}
	if got := rank([]int64{1, 2, 3, 4}, 0.5); got != 2 {
		t.Fatalf("rank p50 of 1..4 = %d, want 2", got)
	}
	if got := rank([]int64{7}, 0.99); got != 7 {
		t.Fatalf("rank p99 of one sample = %d, want 7", got)
	}
}

func TestLagProbeBoundsOrigins(t *testing.T) {
	p := newLagProbe()
	for i := range lagOrigins + 10 {
		p.observe(fmt.Sprint(i), 0, int64(i))
	}
	if n := len(p.report()); n != lagOrigins {
		t.Fatalf("%d origins kept, want %d", n, lagOrigins)
	}
}

// TestConvergenceProbe: in a cluster of three, every agent reports the
// heartbeat lag of both others, with a sane p50.
func TestConvergenceProbe(t *testing.T) {
	agents := startCluster(t, 3, func(c *Config) { c.Heartbeat = 200 * time.Millisecond })
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
