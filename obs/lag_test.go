package obs

import (
	"fmt"
	"testing"
)

func TestLagProbeRing(t *testing.T) {
	p := NewLagProbe()
	for i := range 1000 {
		p.Observe("b", int64(1000+i), int64(1000+i)+int64(i%100)) // lags 0..99 ms
	}
	p.Observe("c", 5000, 4000) // a clock ahead of ours: clamped at 0
	r := p.Report()
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
	p := NewLagProbe()
	for i := range lagOrigins + 10 {
		p.Observe(fmt.Sprint(i), 0, int64(i))
	}
	if n := len(p.Report()); n != lagOrigins {
		t.Fatalf("%d origins kept, want %d", n, lagOrigins)
	}
}
