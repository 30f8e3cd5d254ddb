package main

import (
	"fmt"
	"math"
	"slices"
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
		P50Ms: ms(percentile(s, 50)),
		P99Ms: ms(percentile(s, 99)),
		MaxMs: ms(s[len(s)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be non-empty and in ascending order.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String formats the summary for the tables, e.g. "1.23 / 4.56 / 7.89 ms (n=200)".
func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%s / %s / %s ms (n=%d)", fmtMs(s.P50Ms), fmtMs(s.P99Ms), fmtMs(s.MaxMs), s.N)
}

// fmtMs prints milliseconds with precision suited to their size.
func fmtMs(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// fmtBytes prints a byte count with a binary unit.
func fmtBytes(b float64) string {
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

// cpuMeter measures CPU use over an interval: this process's and, where
// the machine's total is known, everyone else's.
type cpuMeter struct {
	wall      time.Time
	self, all time.Duration
}

func startCPUMeter() cpuMeter {
	return cpuMeter{wall: time.Now(), self: cpuTime(), all: machineBusy()}
}

// cores returns the cores this process and other processes kept busy on
// average since the meter started (others is 0 where unknown).
func (m cpuMeter) cores() (self, others float64) {
	wall := time.Since(m.wall).Seconds()
	if wall <= 0 {
		return 0, 0
	}
	selfUsed := cpuTime() - m.self
	self = selfUsed.Seconds() / wall
	if m.all > 0 {
		others = max((machineBusy()-m.all-selfUsed).Seconds(), 0) / wall
	}
	return self, others
}
