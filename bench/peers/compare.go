package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// RumorFigures are the figures read from a rumor-bench JSON report.
type RumorFigures struct {
	Path        string             `json:"path"`
	Date        string             `json:"date"`
	Short       bool               `json:"short"`
	LoadStart   float64            `json:"load_start"`
	Propagation []RumorPropagation `json:"propagation"`
	Throughput  *RumorThroughput   `json:"throughput,omitempty"`
	Queue       *RumorQueue        `json:"queue,omitempty"`
}

// RumorQueue is rumor-bench's figure 11, the work queue (under
// rumor-bench's JSON names: its figures are benchstat.QueueFigures, as
// here).
type RumorQueue struct {
	Agents        int     `json:"agents"`
	Workers       int     `json:"workers"`
	PayloadBytes  int     `json:"payload_bytes"`
	WaitMs        float64 `json:"wait_ms"`
	SettleStartMs float64 `json:"settle_start_ms"`
	SettleEndMs   float64 `json:"settle_end_ms"`
	benchstat.QueueFigures
	NotDone int `json:"not_done"`
}

// differences lists where the peers' settings depart from the method the
// rumor figures were taken with, so the table cannot claim "same method"
// when it is not.
func (r *RumorFigures) differences(s Settings) []string {
	var out []string
	for _, p := range r.Propagation {
		if p.PayloadBytes != 0 && p.PayloadBytes != s.PayloadBytes {
			out = append(out, fmt.Sprintf("payload: rumor %d B, peers %d B", p.PayloadBytes, s.PayloadBytes))
		}
		if p.SpacingMs != [2]int{} && p.SpacingMs != s.SpacingMs {
			out = append(out, fmt.Sprintf("propagation spacing: rumor %d-%d ms, peers %d-%d ms", p.SpacingMs[0], p.SpacingMs[1], s.SpacingMs[0], s.SpacingMs[1]))
		}
		if p.Updates != s.Updates {
			out = append(out, fmt.Sprintf("propagation messages: rumor %d, peers %d", p.Updates, s.Updates))
		}
	}
	if t := r.Throughput; t != nil {
		if t.Window != 0 && t.Window != s.Window {
			out = append(out, fmt.Sprintf("throughput window: rumor %d, peers %d", t.Window, s.Window))
		}
		if t.Receivers != 0 && t.Receivers != s.TPReceivers {
			out = append(out, fmt.Sprintf("throughput receivers: rumor %d, peers %d", t.Receivers, s.TPReceivers))
		}
	}
	return slices.Compact(out)
}

// RumorPropagation is rumor-bench's propagation figure for one size (the
// fields this program uses, under rumor-bench's JSON names).
type RumorPropagation struct {
	Agents       int               `json:"agents"`
	Updates      int               `json:"updates"`
	Lost         int               `json:"lost"`
	PayloadBytes int               `json:"payload_bytes"`
	SpacingMs    [2]int            `json:"spacing_ms"`
	Latency      benchstat.Summary `json:"latency"`
}

// RumorThroughput is rumor-bench's throughput figure.
type RumorThroughput struct {
	Agents         int               `json:"agents"`
	Receivers      int               `json:"receivers"`
	Window         int               `json:"window"`
	Written        int64             `json:"written"`
	SlowestApplied int64             `json:"slowest_applied"`
	Lost           int64             `json:"lost"`
	UpdatesPerSec  float64           `json:"updates_per_sec"`
	Latency        benchstat.Summary `json:"latency"`
}

// loadRumor reads a rumor-bench JSON report.
func loadRumor(path string) (*RumorFigures, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-rumor: %w", err)
	}
	return parseRumor(path, b)
}

// parseRumor decodes the parts of a rumor-bench report this program uses.
func parseRumor(path string, b []byte) (*RumorFigures, error) {
	var raw struct {
		Date    string `json:"date"`
		Short   bool   `json:"short"`
		Machine struct {
			LoadStart float64 `json:"load_start"`
		} `json:"machine"`
		Propagation []RumorPropagation `json:"propagation"`
		Throughput  *RumorThroughput   `json:"throughput"`
		Queue       *RumorQueue        `json:"work_queue"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("-rumor %s: not a rumor-bench JSON report: %w", path, err)
	}
	if raw.Date == "" && raw.Propagation == nil && raw.Throughput == nil && raw.Queue == nil {
		return nil, fmt.Errorf("-rumor %s: no rumor-bench figures in it", path)
	}
	return &RumorFigures{Path: path, Date: raw.Date, Short: raw.Short, LoadStart: raw.Machine.LoadStart,
		Propagation: raw.Propagation, Throughput: raw.Throughput, Queue: raw.Queue}, nil
}

// ComparisonRow is one line of the side-by-side table. A nil value was not
// measured; a ratio is rumor's value divided by the peer's.
type ComparisonRow struct {
	Metric             string   `json:"metric"`
	Better             string   `json:"better,omitempty"` // "lower", "higher", or "" (no ratio)
	Rumor              *float64 `json:"rumor"`
	Redis              *float64 `json:"redis"`
	Memberlist         *float64 `json:"memberlist"`
	RumorPerRedis      *float64 `json:"rumor_per_redis"`
	RumorPerMemberlist *float64 `json:"rumor_per_memberlist"`
}

// compare builds the side-by-side rows for every size any system was
// measured at, then throughput.
func compare(rep Report) []ComparisonRow {
	var sizes []int
	rumorProp := map[int]*RumorPropagation{}
	redisProp, mlProp := map[int]*PropagationResult{}, map[int]*PropagationResult{}
	if rep.Rumor != nil {
		for i, r := range rep.Rumor.Propagation {
			rumorProp[r.Agents] = &rep.Rumor.Propagation[i]
			sizes = append(sizes, r.Agents)
		}
	}
	for _, x := range []struct {
		pr *PeerReport
		m  map[int]*PropagationResult
	}{{rep.Redis, redisProp}, {rep.Memberlist, mlProp}} {
		if x.pr == nil {
			continue
		}
		for i, r := range x.pr.Propagation {
			x.m[r.N] = &x.pr.Propagation[i]
			sizes = append(sizes, r.N)
		}
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)

	var rows []ComparisonRow
	for _, n := range sizes {
		get := func(f func(benchstat.Summary) float64) (r, d, m *float64) {
			if x := rumorProp[n]; x != nil && x.Latency.N > 0 {
				r = ptr(f(x.Latency))
			}
			if x := redisProp[n]; x != nil && x.Latency.N > 0 {
				d = ptr(f(x.Latency))
			}
			if x := mlProp[n]; x != nil && x.Latency.N > 0 {
				m = ptr(f(x.Latency))
			}
			return r, d, m
		}
		for _, q := range []struct {
			name string
			f    func(benchstat.Summary) float64
		}{{"p50 ms", func(s benchstat.Summary) float64 { return s.P50Ms }}, {"p99 ms", func(s benchstat.Summary) float64 { return s.P99Ms }},
			{"max ms", func(s benchstat.Summary) float64 { return s.MaxMs }}} {
			r, d, m := get(q.f)
			rows = append(rows, row(fmt.Sprintf("propagation N=%d %s", n, q.name), "lower", r, d, m))
		}
		var r, d, m *float64
		if x := rumorProp[n]; x != nil {
			r = ptr(float64(x.Lost))
		}
		if x := redisProp[n]; x != nil {
			d = ptr(float64(x.Lost))
		}
		if x := mlProp[n]; x != nil {
			m = ptr(float64(x.Lost))
		}
		rows = append(rows, row(fmt.Sprintf("propagation N=%d lost", n), "", r, d, m))
	}

	var rt *RumorThroughput
	if rep.Rumor != nil {
		rt = rep.Rumor.Throughput
	}
	var dt, mt *ThroughputResult
	if rep.Redis != nil {
		dt = rep.Redis.Throughput
	}
	if rep.Memberlist != nil {
		mt = rep.Memberlist.Throughput
	}
	if rt == nil && dt == nil && mt == nil {
		return rows
	}
	// tp picks one figure from each throughput result; ok false means
	// not measured (a latency without samples).
	tp := func(fr func(*RumorThroughput) (float64, bool), fp func(*ThroughputResult) (float64, bool)) (r, d, m *float64) {
		pick := func(v float64, ok bool) *float64 {
			if !ok {
				return nil
			}
			return ptr(v)
		}
		if rt != nil {
			r = pick(fr(rt))
		}
		if dt != nil {
			d = pick(fp(dt))
		}
		if mt != nil {
			m = pick(fp(mt))
		}
		return r, d, m
	}
	r, d, m := tp(func(t *RumorThroughput) (float64, bool) { return t.UpdatesPerSec, true },
		func(t *ThroughputResult) (float64, bool) { return t.UpdatesPerSec, true })
	rows = append(rows, row("throughput updates/s (slowest receiver)", "higher", r, d, m))
	r, d, m = tp(func(t *RumorThroughput) (float64, bool) { return float64(t.Lost), true },
		func(t *ThroughputResult) (float64, bool) { return float64(t.Lost), true })
	rows = append(rows, row("throughput lost", "", r, d, m))
	for _, q := range []struct {
		name string
		f    func(benchstat.Summary) float64
	}{{"p50", func(s benchstat.Summary) float64 { return s.P50Ms }}, {"p99", func(s benchstat.Summary) float64 { return s.P99Ms }}} {
		r, d, m = tp(func(t *RumorThroughput) (float64, bool) { return q.f(t.Latency), t.Latency.N > 0 },
			func(t *ThroughputResult) (float64, bool) { return q.f(t.Latency), t.Latency.N > 0 })
		rows = append(rows, row("latency under load "+q.name+" ms", "lower", r, d, m))
	}
	return rows
}

// row makes a comparison row and its ratios (only where better is set and
// both values are there and the peer's is positive).
func row(metric, better string, rumor, redis, ml *float64) ComparisonRow {
	c := ComparisonRow{Metric: metric, Better: better, Rumor: rumor, Redis: redis, Memberlist: ml}
	if better != "" {
		c.RumorPerRedis, c.RumorPerMemberlist = ratio(rumor, redis), ratio(rumor, ml)
	}
	return c
}

// ratio returns a / b, or nil when either is missing or b is not positive.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b <= 0 {
		return nil
	}
	return ptr(*a / *b)
}

func ptr(v float64) *float64 { return &v }

// printComparison prints the side-by-side table.
func printComparison(out io.Writer, rep Report) {
	if len(rep.Comparison) == 0 {
		return
	}
	fmt.Fprintln(out)
	var diffs []string
	if rep.Rumor != nil {
		diffs = rep.Rumor.differences(rep.Settings)
	}
	method := "same method"
	if len(diffs) > 0 {
		method = "NOT the same method as the rumor figures"
	}
	fmt.Fprintf(out, "Side by side: same machine, %s, %d B payloads", method, rep.Settings.PayloadBytes)
	if rep.Rumor == nil {
		fmt.Fprint(out, " (no rumor column: pass -rumor bench.json from `go run ./cmd/rumor-bench -json bench.json`)")
	}
	fmt.Fprintln(out)
	for _, d := range diffs {
		fmt.Fprintf(out, "WARNING: %s\n", d)
	}
	fmt.Fprintln(out, "N is rumor agents (N-1 receivers), Redis subscribers (N receivers), memberlist nodes (N-1 receivers).")
	fmt.Fprintln(out, "rumor/peer = rumor's figure divided by the peer's: for latencies below 1 means rumor is faster, for updates/s above 1 means rumor carries more.")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\trumor\tRedis pub/sub\tmemberlist\trumor/Redis\trumor/memberlist\t")
	for _, r := range rep.Comparison {
		count := r.Better == ""
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Metric, cell(r.Rumor, count), cell(r.Redis, count), cell(r.Memberlist, count),
			ratioCell(r.RumorPerRedis), ratioCell(r.RumorPerMemberlist))
	}
	tw.Flush()
}

// cell formats a value, "-" when not measured; a count as an integer.
func cell(v *float64, count bool) string {
	switch {
	case v == nil:
		return "-"
	case count || *v >= 1000:
		return fmt.Sprintf("%.0f", *v)
	default:
		return benchstat.FmtMs(*v)
	}
}

// ratioCell formats a ratio, "-" when there is none.
func ratioCell(v *float64) string {
	switch {
	case v == nil:
		return "-"
	case *v >= 100:
		return fmt.Sprintf("%.0fx", *v)
	case *v >= 1:
		return fmt.Sprintf("%.2fx", *v)
	case *v > 0 && *v < 0.01:
		return fmt.Sprintf("1/%.0fx", 1 / *v)
	default:
		return fmt.Sprintf("%.3fx", *v)
	}
}

// queueDifferences lists where Redis's work-queue run departs from
// rumor's figure 11 (besides the mechanism itself).
func queueDifferences(rq *RumorQueue, r QueueResult) []string {
	var out []string
	if rq.Tasks != r.Tasks {
		out = append(out, fmt.Sprintf("tasks: rumor %d, Redis %d", rq.Tasks, r.Tasks))
	}
	if rq.Workers != r.Workers {
		out = append(out, fmt.Sprintf("workers: rumor %d, Redis %d", rq.Workers, r.Workers))
	}
	if rq.PayloadBytes != r.PayloadBytes {
		out = append(out, fmt.Sprintf("payload: rumor %d B, Redis %d B", rq.PayloadBytes, r.PayloadBytes))
	}
	if rq.WaitMs != r.TimeoutSeconds*1000 {
		out = append(out, fmt.Sprintf("take wait: rumor %s ms, Redis BLMOVE timeout %s ms", benchstat.FmtMs(rq.WaitMs), benchstat.FmtMs(r.TimeoutSeconds*1000)))
	}
	return out
}

// redisQueue returns Redis's work-queue run in mode, or nil.
func redisQueue(rep Report, mode string) *QueueResult {
	if rep.Redis == nil {
		return nil
	}
	for i, r := range rep.Redis.Queue {
		if r.Mode == mode {
			return &rep.Redis.Queue[i]
		}
	}
	return nil
}

// compareQueue builds the work queue's side-by-side rows: rumor's figure 11
// against Redis's run with one call per submit, as rumor's submitter makes
// (nil when neither was measured).
func compareQueue(rep Report) []ComparisonRow {
	var rq *benchstat.QueueFigures
	if rep.Rumor != nil && rep.Rumor.Queue != nil {
		rq = &rep.Rumor.Queue.QueueFigures
	}
	var dq *benchstat.QueueFigures
	if r := redisQueue(rep, modeOneCall); r != nil {
		dq = &r.QueueFigures
	}
	if rq == nil && dq == nil {
		return nil
	}
	var rows []ComparisonRow
	for _, q := range []struct {
		metric, better string
		f              func(*benchstat.QueueFigures) (float64, bool)
	}{
		{"submit tasks/s", "higher", func(f *benchstat.QueueFigures) (float64, bool) { return f.SubmitPerSec, f.SubmitSeconds > 0 }},
		{"drain tasks/s (first submit to last done)", "higher", func(f *benchstat.QueueFigures) (float64, bool) { return f.DrainPerSec, f.DrainSeconds > 0 }},
		{"take p50 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.Take.P50Ms, f.Take.N > 0 }},
		{"take p99 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.Take.P99Ms, f.Take.N > 0 }},
		{"done/ack call p50 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.Ack.P50Ms, f.Ack.N > 0 }},
		{"done/ack call p99 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.Ack.P99Ms, f.Ack.N > 0 }},
		{"end-to-end p50 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.EndToEnd.P50Ms, f.EndToEnd.N > 0 }},
		{"end-to-end p99 ms", "lower", func(f *benchstat.QueueFigures) (float64, bool) { return f.EndToEnd.P99Ms, f.EndToEnd.N > 0 }},
		{"tasks", "", func(f *benchstat.QueueFigures) (float64, bool) { return float64(f.Tasks), true }},
		{"taken twice", "", func(f *benchstat.QueueFigures) (float64, bool) { return float64(f.TakenTwice), true }},
		{"lost", "", func(f *benchstat.QueueFigures) (float64, bool) { return float64(f.Lost), true }},
	} {
		pick := func(f *benchstat.QueueFigures) *float64 {
			if f == nil {
				return nil
			}
			if v, ok := q.f(f); ok {
				return ptr(v)
			}
			return nil
		}
		rows = append(rows, row("work queue "+q.metric, q.better, pick(rq), pick(dq), nil))
	}
	return rows
}

// printQueueComparison prints the work queue side by side.
func printQueueComparison(out io.Writer, rep Report) {
	if len(rep.QueueComparison) == 0 {
		return
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Work queue side by side: same machine, %d B payloads, %d workers; rumor: agents in one process, one worker each, calls in process, each take claims its task's lease (a settle window);\n",
		rep.Settings.PayloadBytes, rep.Settings.QueueWorkers)
	fmt.Fprint(out, "Redis: one server, LPUSH one call per submit, BLMOVE + LREM over loopback TCP")
	if rep.Rumor == nil || rep.Rumor.Queue == nil {
		fmt.Fprint(out, " (no rumor column: pass -rumor bench.json from `go run ./cmd/rumor-bench -json bench.json` with figure 11)")
	}
	fmt.Fprintln(out)
	if rep.Rumor != nil && rep.Rumor.Queue != nil {
		if r := redisQueue(rep, modeOneCall); r != nil {
			for _, d := range queueDifferences(rep.Rumor.Queue, *r) {
				fmt.Fprintf(out, "WARNING: %s\n", d)
			}
		}
	}
	fmt.Fprintln(out, "rumor/Redis = rumor's figure divided by Redis's: for latencies below 1 means rumor is faster, for tasks/s above 1 means rumor moves more.")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\trumor\tRedis BLMOVE\trumor/Redis\t")
	for _, r := range rep.QueueComparison {
		count := r.Better == ""
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.Metric, cell(r.Rumor, count), cell(r.Redis, count), ratioCell(r.RumorPerRedis))
	}
	tw.Flush()
}
