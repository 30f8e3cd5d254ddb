// Package benchstat holds what rumor's benchmarks share: latency summaries
// by nearest-rank percentiles, number formatting for the tables, and the
// machine's load and CPU use, so every figure is computed the same way in
// rumor-bench and in the peers comparison (bench/peers).
package benchstat

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Summary is a latency distribution reduced to nearest-rank percentiles, in
// milliseconds.
type Summary struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Summarize returns the p50, p99 and maximum of ds by the nearest-rank
// method (the smallest sample with at least p% of the samples at or below
// it). It does not modify ds. An empty input gives the zero Summary.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{
		N:     len(s),
		P50Ms: Ms(Percentile(s, 50)),
		P99Ms: Ms(Percentile(s, 99)),
		MaxMs: Ms(s[len(s)-1]),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be non-empty and in ascending order.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Ms converts a duration to fractional milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String formats the summary for the tables, e.g. "1.23 / 4.56 / 7.89 ms (n=200)".
func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%s / %s / %s ms (n=%d)", FmtMs(s.P50Ms), FmtMs(s.P99Ms), FmtMs(s.MaxMs), s.N)
}

// FmtMs prints milliseconds with precision suited to their size.
func FmtMs(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// FmtBytes prints a byte count with a binary unit.
func FmtBytes(b float64) string {
	switch {
	case math.Abs(b) >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// LoadAverage returns the 1-minute load average, or -1 where unknown.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
