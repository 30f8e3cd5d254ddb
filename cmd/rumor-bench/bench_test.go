package main

import (
	"slices"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
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

func TestTrackerWaitsForEveryOtherAgent(t *testing.T) {
	tr := newTracker()
	t0 := time.Now()
	tr.begin("k", 1, 3) // agent 1 writes; agents 0 and 2 must apply
	start := tr.pending["k"].start
	tr.seen("k", 1, start.Add(time.Millisecond))   // the writer itself: ignored
	tr.seen("k", 0, start.Add(3*time.Millisecond)) // first receiver
	tr.seen("k", 0, start.Add(9*time.Millisecond)) // duplicate: ignored
	tr.seen("other", 2, t0)                        // untracked key: ignored
	if n := tr.outstanding(); n != 1 {
		t.Fatalf("outstanding = %d after one of two receivers, want 1", n)
	}
	tr.seen("k", 2, start.Add(5*time.Millisecond))
	if n := tr.outstanding(); n != 0 {
		t.Fatalf("outstanding = %d after both receivers, want 0", n)
	}
	if got := tr.latencies(); !slices.Equal(got, []time.Duration{5 * time.Millisecond}) {
		t.Fatalf("latencies = %v, want [5ms] (time to the last receiver)", got)
	}
}

func TestParseSizes(t *testing.T) {
	if got, err := parseSizes(" 8, 30,"); err != nil || !slices.Equal(got, []int{8, 30}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1", "x", "8,-3"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) succeeded", bad)
		}
	}
}

func TestPayloadSizes(t *testing.T) {
	req := servicePayload(200)
	if n := len(crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags})); n != 200 {
		t.Errorf("svc payload encodes to %d bytes, want 200", n)
	}
	if n := len(crdt.Encode(crdt.BlacklistValue{Reason: blacklistReason(200)})); n != 200 {
		t.Errorf("bl payload encodes to %d bytes, want 200", n)
	}
}

func TestMemorySmall(t *testing.T) {
	res, err := runMemory(600, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != 600 || res.PayloadBytes != 200 {
		t.Errorf("result %+v", res)
	}
}
