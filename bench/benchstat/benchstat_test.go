package benchstat

import (
	"slices"
	"testing"
	"time"
)

func msList(vs ...int) []time.Duration {
	out := make([]time.Duration, len(vs))
	for i, v := range vs {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestSummarizeKnownInputs(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", msList(7), Summary{N: 1, P50Ms: 7, P99Ms: 7, MaxMs: 7}},
		{"two", msList(2, 1), Summary{N: 2, P50Ms: 1, P99Ms: 2, MaxMs: 2}},
		{"ten", msList(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), Summary{N: 10, P50Ms: 5, P99Ms: 10, MaxMs: 10}},
		{"hundred", msList(hundred...), Summary{N: 100, P50Ms: 50, P99Ms: 99, MaxMs: 100}},
		{"outlier", msList(1, 1, 1, 1, 1, 1, 1, 1, 1, 1000), Summary{N: 10, P50Ms: 1, P99Ms: 1000, MaxMs: 1000}},
	} {
		in := slices.Clone(tc.in)
		if got := Summarize(tc.in); got != tc.want {
			t.Errorf("%s: Summarize = %+v, want %+v", tc.name, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("%s: Summarize modified its input", tc.name)
		}
	}
	// 1000 samples: p99 is the 990th smallest.
	k := make([]time.Duration, 1000)
	for i := range k {
		k[i] = time.Duration(i+1) * time.Microsecond
	}
	if got := Summarize(k); got.P50Ms != 0.5 || got.P99Ms != 0.99 || got.MaxMs != 1 {
		t.Errorf("1000 samples: %+v", got)
	}
}

func TestSummaryString(t *testing.T) {
	if got, want := (Summary{N: 3, P50Ms: 1.234, P99Ms: 45.67, MaxMs: 1234}).String(), "1.23 / 45.7 / 1234 ms (n=3)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := (Summary{}).String(); got != "no samples" {
		t.Errorf("empty String = %q", got)
	}
}

func TestSummarizeNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // 100 ms .. 1 ms, unsorted
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Summary{N: 100, P50Ms: 50, P99Ms: 99, MaxMs: 100}
	if got != want {
		t.Fatalf("Summarize = %+v, want %+v", got, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("Summarize modified its input")
	}
	if s := Summarize(nil); s != (Summary{}) {
		t.Fatalf("Summarize(nil) = %+v", s)
	}
	one := Summarize([]time.Duration{3 * time.Millisecond})
	if one.P50Ms != 3 || one.P99Ms != 3 || one.MaxMs != 3 {
		t.Fatalf("one sample: %+v", one)
	}
}

func TestPercentileSmallSets(t *testing.T) {
	s := []time.Duration{1, 2, 3}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{1, 1}, {33, 1}, {34, 2}, {50, 2}, {67, 3}, {99, 3}, {100, 3}} {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", s, c.p, got, c.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "1234 (redis-server *:1) S 1 1234 1234 0 -1 4194560 300 0 0 0 250 50 0 0 20 0 5 0 100 0 0"
	if got := ParseProcStat(stat); got != 3*time.Second {
		t.Fatalf("ParseProcStat = %v, want 3s (300 ticks)", got)
	}
	if ParseProcStat("garbage") != 0 {
		t.Fatal("garbage parsed")
	}
}
