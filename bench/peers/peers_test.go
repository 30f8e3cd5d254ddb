package main

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

func TestMessageRoundTrip(t *testing.T) {
	b := newMessage(tagTimed, 1<<40+7, 200)
	if len(b) != 200 {
		t.Fatalf("len = %d, want 200", len(b))
	}
	tag, seq, ok := parseMessage(b)
	if !ok || tag != tagTimed || seq != 1<<40+7 {
		t.Fatalf("parseMessage = %q %d %v", tag, seq, ok)
	}
	if _, _, ok := parseMessage(b[:headerSize-1]); ok {
		t.Fatal("a short message parsed")
	}
	if n := len(newMessage(tagWarmup, 1, 3)); n != headerSize {
		t.Fatalf("tiny message has %d bytes, want the header's %d", n, headerSize)
	}
}

func TestTrackerTimesTheLastReceiver(t *testing.T) {
	tr := newTracker()
	tr.begin(1, 3, 0) // receiver 0 is the writer
	start := time.Now()
	tr.seen(1, 0, start.Add(time.Hour)) // the writer's own copy: ignored
	tr.seen(1, 1, start.Add(10*time.Millisecond))
	tr.seen(1, 1, start.Add(time.Hour)) // a duplicate: ignored
	if tr.outstanding() != 1 {
		t.Fatal("complete after one of two receivers")
	}
	tr.seen(1, 2, start.Add(20*time.Millisecond))
	if tr.outstanding() != 0 {
		t.Fatal("not complete after both receivers")
	}
	d, ok := tr.latency(1)
	if !ok || d < 20*time.Millisecond || d > time.Second {
		t.Fatalf("latency = %v %v, want about 20ms", d, ok)
	}
	tr.seen(99, 1, start) // unknown: ignored
	if len(tr.latencies()) != 1 {
		t.Fatalf("latencies = %v", tr.latencies())
	}
	tr.begin(2, 2, -1) // no writer among the receivers
	tr.seen(2, 0, start)
	if tr.outstanding() != 1 {
		t.Fatal("a writer-less message completed after one of two receivers")
	}
}

func TestRESPCommandAndReplies(t *testing.T) {
	if got := string(command("PUBLISH", "ch", "hi")); got != "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n" {
		t.Fatalf("command = %q", got)
	}
	in := "+PONG\r\n-ERR bad\r\n:42\r\n$-1\r\n$3\r\na\r\n\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\n\x00\r\n\x01\r\n*-1\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	want := []any{"PONG", respError("ERR bad"), int64(42), nil, []byte("a\r\n"),
		[]any{[]byte("message"), []byte("ch"), []byte("\x00\r\n\x01")}, nil}
	for i, w := range want {
		v, err := readValue(r)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("value %d = %#v, want %#v", i, v, w)
		}
	}
	ch, payload, ok := pubsubMessage(want[5])
	if !ok || ch != "ch" || !bytes.Equal(payload, []byte("\x00\r\n\x01")) {
		t.Fatalf("pubsubMessage = %q %q %v", ch, payload, ok)
	}
	if _, _, ok := pubsubMessage([]any{[]byte("subscribe"), []byte("ch"), int64(1)}); ok {
		t.Fatal("a subscribe confirmation read as a message")
	}
	for _, bad := range []string{"$5\r\nab\r\n", "$3\r\nabcde", "?x\r\n", ":x\r\n", "+no-crlf\n", "*2\r\n:1\r\n"} {
		if _, err := readValue(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readValue(%q) did not fail", bad)
		}
	}
}

func TestSNMPParser(t *testing.T) {
	snmp := "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 2 7 90 5 0\nUdpLite: InDatagrams\nUdpLite: 0\n"
	if in, rcv := parseSNMPUDP(snmp); in != 7 || rcv != 5 {
		t.Fatalf("parseSNMPUDP = %d, %d, want 7, 5", in, rcv)
	}
}

func TestRetransmitLimit(t *testing.T) {
	for _, c := range []struct{ mult, n, want int }{{2, 6, 2}, {2, 9, 2}, {2, 10, 4}, {2, 30, 4}, {2, 99, 4}, {2, 100, 6}, {4, 30, 8}} {
		if got := retransmitLimit(c.mult, c.n); got != c.want {
			t.Errorf("retransmitLimit(%d, %d) = %d, want %d", c.mult, c.n, got, c.want)
		}
	}
}

func TestCompareWithRumor(t *testing.T) {
	rumor, err := parseRumor("bench.json", []byte(`{"date":"d","short":false,"machine":{"load_start":1.5},
		"propagation":[{"agents":10,"updates":200,"lost":0,"payload_bytes":200,"spacing_ms":[10,20],"latency":{"n":200,"p50_ms":2,"p99_ms":8,"max_ms":9}}],
		"throughput":{"agents":6,"receivers":5,"window":4096,"written":1000,"slowest_applied":1000,"lost":0,"updates_per_sec":50000,
		"latency":{"n":10,"p50_ms":4,"p99_ms":6,"max_ms":7}},"memory":{"keys":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	rep := Report{Rumor: rumor,
		Redis: &PeerReport{
			Propagation: []PropagationResult{{N: 10, Latency: benchstat.Summary{N: 200, P50Ms: 1, P99Ms: 2, MaxMs: 3}}, {N: 30, Latency: benchstat.Summary{N: 200, P50Ms: 1, P99Ms: 4, MaxMs: 5}}},
			Throughput:  &ThroughputResult{UpdatesPerSec: 100000, Latency: benchstat.Summary{N: 10, P50Ms: 2, P99Ms: 3}},
		},
		Memberlist: &PeerReport{Throughput: &ThroughputResult{UpdatesPerSec: 80, Lost: 7}},
	}
	rows := compare(rep)
	byName := map[string]ComparisonRow{}
	for _, r := range rows {
		byName[r.Metric] = r
	}
	p50 := byName["propagation N=10 p50 ms"]
	if p50.Rumor == nil || *p50.Rumor != 2 || *p50.RumorPerRedis != 2 || p50.Memberlist != nil || p50.RumorPerMemberlist != nil {
		t.Fatalf("N=10 p50 row = %+v", p50)
	}
	if r := byName["propagation N=30 p99 ms"]; r.Rumor != nil || *r.Redis != 4 || r.RumorPerRedis != nil {
		t.Fatalf("N=30 p99 row = %+v", r)
	}
	tp := byName["throughput updates/s (slowest receiver)"]
	if *tp.RumorPerRedis != 0.5 || *tp.RumorPerMemberlist != 625 {
		t.Fatalf("throughput row = %+v", tp)
	}
	if lost := byName["throughput lost"]; *lost.Memberlist != 7 || lost.RumorPerMemberlist != nil {
		t.Fatalf("lost row = %+v", lost)
	}
	// Memberlist latency under load has no samples here: not measured.
	if r := byName["latency under load p50 ms"]; r.Memberlist != nil || r.RumorPerMemberlist != nil || *r.RumorPerRedis != 2 {
		t.Fatalf("latency under load row = %+v", r)
	}
	same := Settings{PayloadBytes: 200, SpacingMs: [2]int{10, 20}, Updates: 200, Window: 4096, TPReceivers: 5}
	if d := rumor.differences(same); len(d) != 0 {
		t.Fatalf("differences with the same settings: %q", d)
	}
	other := same
	other.SpacingMs, other.Window = [2]int{100, 200}, 256
	if d := rumor.differences(other); len(d) != 2 {
		t.Fatalf("differences = %q, want spacing and window", d)
	}
	if _, err := parseRumor("x", []byte(`{"something":"else"}`)); err == nil {
		t.Fatal("a report without figures was accepted")
	}
}

func TestCompareQueueWithRumor(t *testing.T) {
	rumor, err := parseRumor("bench.json", []byte(`{"date":"d","short":true,
		"work_queue":{"agents":3,"workers":3,"payload_bytes":200,"wait_ms":250,"settle_start_ms":50,"settle_end_ms":50,
		"tasks":100,"submit_seconds":0.01,"submit_per_sec":10000,"done":100,"drain_seconds":4,"drain_per_sec":25,
		"take":{"n":100,"p50_ms":55,"p99_ms":400,"max_ms":480},"end_to_end":{"n":100,"p50_ms":1800,"p99_ms":4000,"max_ms":4100},
		"takes":100,"empty_takes":0,"taken_twice":0,"lost":0,"not_done":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	if q := rumor.Queue; q == nil || q.Tasks != 100 || q.DrainPerSec != 25 || q.Take.P99Ms != 400 || q.WaitMs != 250 {
		t.Fatalf("parsed work queue %+v", rumor.Queue)
	}
	redis := QueueResult{Peer: "redis", Mode: modeOneCall, Workers: 3, PayloadBytes: 200, TimeoutSeconds: 0.25,
		QueueFigures: benchstat.QueueFigures{Tasks: 1000, SubmitSeconds: 0.2, SubmitPerSec: 5000, Done: 1000, DrainSeconds: 0.2, DrainPerSec: 5000,
			Take: benchstat.Summary{N: 1000, P50Ms: 0.25, P99Ms: 2}, Ack: benchstat.Summary{N: 1000, P50Ms: 0.1, P99Ms: 0.5}, EndToEnd: benchstat.Summary{N: 1000, P50Ms: 0.2, P99Ms: 1}}}
	piped := redis
	piped.Mode, piped.SubmitPerSec = modePipelined, 70000
	rep := Report{Rumor: rumor, Redis: &PeerReport{Queue: []QueueResult{piped, redis}}}
	byName := map[string]ComparisonRow{}
	for _, r := range compareQueue(rep) {
		byName[r.Metric] = r
	}
	// Against the one-call-per-submit run, not the pipelined one.
	if r := byName["work queue submit tasks/s"]; *r.Rumor != 10000 || *r.Redis != 5000 || *r.RumorPerRedis != 2 || r.Memberlist != nil {
		t.Fatalf("submit row = %+v", r)
	}
	if r := byName["work queue drain tasks/s (first submit to last done)"]; *r.RumorPerRedis != 0.005 {
		t.Fatalf("drain row = %+v", r)
	}
	if r := byName["work queue take p99 ms"]; *r.RumorPerRedis != 200 {
		t.Fatalf("take p99 row = %+v", r)
	}
	// A rumor report from before the ack figure: no rumor value, no ratio.
	if r := byName["work queue done/ack call p99 ms"]; r.Rumor != nil || *r.Redis != 0.5 || r.RumorPerRedis != nil {
		t.Fatalf("ack p99 row = %+v", r)
	}
	if r := byName["work queue lost"]; *r.Rumor != 0 || *r.Redis != 0 || r.RumorPerRedis != nil {
		t.Fatalf("lost row = %+v", r)
	}
	if d := queueDifferences(rumor.Queue, redis); len(d) != 1 || !strings.Contains(d[0], "tasks: rumor 100, Redis 1000") {
		t.Fatalf("differences = %q", d)
	}
	var out bytes.Buffer
	printQueueComparison(&out, Report{Rumor: rumor, Redis: rep.Redis, QueueComparison: compareQueue(rep)})
	if !strings.Contains(out.String(), "WARNING: tasks: rumor 100, Redis 1000") || !strings.Contains(out.String(), "work queue take p99 ms") {
		t.Errorf("printed:\n%s", out.String())
	}
	// Neither measured: no rows. Redis alone: rows without ratios.
	if rows := compareQueue(Report{}); rows != nil {
		t.Fatalf("rows without any queue figure: %+v", rows)
	}
	for _, r := range compareQueue(Report{Redis: &PeerReport{Queue: []QueueResult{redis}}}) {
		if r.Rumor != nil || r.RumorPerRedis != nil || r.Redis == nil {
			t.Fatalf("Redis-only row = %+v", r)
		}
	}
	// A report with only figure 11 is a rumor-bench report.
	if _, err := parseRumor("x", []byte(`{"work_queue":{"tasks":1}}`)); err != nil {
		t.Fatal(err)
	}
}

func TestQueueProblem(t *testing.T) {
	ok := QueueResult{QueueFigures: benchstat.QueueFigures{Tasks: 10, Done: 10}}
	if err := ok.problem(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.TakenTwice, bad.Lost, bad.Left = 1, 2, 3
	if err := bad.problem(); err == nil || !strings.Contains(err.Error(), "1 tasks were taken twice") ||
		!strings.Contains(err.Error(), "2 of 10") || !strings.Contains(err.Error(), "3 entries were left") {
		t.Fatalf("problem = %v", err)
	}
}

func TestParseFigures(t *testing.T) {
	f, err := parseFigures("queue, throughput")
	if err != nil || !f["queue"] || !f["throughput"] || f["propagation"] {
		t.Fatalf("parseFigures = %v %v", f, err)
	}
	for _, bad := range []string{"", "latency", ","} {
		if _, err := parseFigures(bad); err == nil {
			t.Errorf("parseFigures(%q) accepted", bad)
		}
	}
}

func TestRatioCell(t *testing.T) {
	for _, c := range []struct {
		v    *float64
		want string
	}{{nil, "-"}, {ptr(355), "355x"}, {ptr(1.74), "1.74x"}, {ptr(0.5), "0.500x"}, {ptr(0.00102), "1/980x"}, {ptr(0), "0.000x"}} {
		if got := ratioCell(c.v); got != c.want {
			t.Errorf("ratioCell(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
