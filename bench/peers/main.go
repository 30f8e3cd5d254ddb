// Command peers measures the systems a rumor user would otherwise pick,
// with rumor-bench's method and payloads, on this machine and in the same
// run, and prints them beside rumor's own figures:
//
//   - Redis pub/sub (the central broker): N subscriber connections on one
//     channel of a redis-server on 127.0.0.1, one publisher connection.
//   - hashicorp/memberlist (the gossip library serf and Consul use): N
//     nodes in this process on 127.0.0.1, joined, each with a delegate
//     whose TransmitLimitedQueue carries the messages.
//
// For each, as rumor-bench does for rumor:
//
//  1. Propagation: for each size N, ≥200 messages of 200 B, one every
//     10-20 ms (jittered), each timed on one clock from just before the
//     publish call until the last receiver has it; p50/p99/max and every
//     sample. memberlist writes from a rotating node, as rumor does; Redis
//     has one publisher and N subscribers.
//  2. Throughput: one publisher and 5 receivers; the publisher sends as
//     fast as it can for a fixed time while staying at most -window
//     messages ahead of the slowest receiver; every delivery is counted on
//     every receiver; updates/s is what the slowest receiver got divided
//     by the time until the last delivery; lost is what it never got.
//  3. Work queue (Redis only; rumor-bench figure 11): the reliable-queue
//     recipe on a list. A producer connection LPUSHes -queue-tasks tasks
//     of 200 B as fast as it can, one call per task (and again pipelined),
//     while 3 worker connections loop BLMOVE jobs processing RIGHT LEFT
//     0.25 (the take) then LREM processing 1 <task> (the ack): tasks/s
//     submitted and drained, take and submit-to-ack latency, tasks taken
//     twice and lost.
//
// With -rumor bench.json (written by `go run ./cmd/rumor-bench -json
// bench.json` in the repository root) the table gains a rumor column and
// the ratios rumor/peer.
//
// Usage:
//
//	peers [-short] [-n 10,30] [-redis-port 6379] [-peers redis,memberlist] [-figures propagation,throughput,queue] [-queue-tasks 1000] [-rumor bench.json] [-json out.json]
//
// `make bench-peers` starts a throw-away redis-server and runs this. It
// exits 0 when every figure was measured (lost messages are a finding, not
// a failure), 1 otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// params are the measurement's knobs, from the flags.
type params struct {
	sizes       []int
	updates     int
	spacingMin  time.Duration
	spacingMax  time.Duration
	payload     int
	drain       time.Duration // stop waiting after this long without a delivery
	drainMax    time.Duration // and after this long in all
	tpDuration  time.Duration
	tpReceivers int
	window      int
	sampleEvery int
	seed        uint64
	queue       queueParams
}

// Machine describes where the figures were taken.
type Machine struct {
	NumCPU     int     `json:"num_cpu"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	CPU        string  `json:"cpu,omitempty"`
	LoadStart  float64 `json:"load_start"`
	LoadEnd    float64 `json:"load_end"`
	// OtherCores is the CPU other processes (Redis server included) used
	// during the run, in cores on average.
	OtherCores float64 `json:"other_cores"`
}

// Settings are the method's parameters, for the report.
type Settings struct {
	Sizes             []int   `json:"sizes"`
	Updates           int     `json:"updates"`
	SpacingMs         [2]int  `json:"spacing_ms"`
	PayloadBytes      int     `json:"payload_bytes"`
	ThroughputSeconds float64 `json:"throughput_seconds"`
	TPReceivers       int     `json:"throughput_receivers"`
	Window            int     `json:"window"`
	SampleEvery       int     `json:"sample_every"`
	DrainIdleSeconds  float64 `json:"drain_idle_seconds"`
	DrainMaxSeconds   float64 `json:"drain_max_seconds"`
	Seed              uint64  `json:"seed"`
	QueueTasks        int     `json:"queue_tasks"`
	QueueWorkers      int     `json:"queue_workers"`
	QueueTimeoutMs    float64 `json:"queue_timeout_ms"`
}

// PeerReport is one peer's figures.
type PeerReport struct {
	Propagation []PropagationResult `json:"propagation"`
	Throughput  *ThroughputResult   `json:"throughput,omitempty"`
	// Queue is the work-queue figure (Redis only), one result per
	// producer mode.
	Queue []QueueResult `json:"queue,omitempty"`
}

// Report is everything measured; -json writes it.
type Report struct {
	Date       string              `json:"date"`
	Machine    Machine             `json:"machine"`
	Short      bool                `json:"short"`
	Settings   Settings            `json:"settings"`
	RedisInfo  *RedisInfo          `json:"redis_server,omitempty"`
	Redis      *PeerReport         `json:"redis,omitempty"`
	MLSettings *MemberlistSettings `json:"memberlist_settings,omitempty"`
	Memberlist *PeerReport         `json:"memberlist,omitempty"`
	Rumor      *RumorFigures       `json:"rumor,omitempty"`
	Comparison []ComparisonRow     `json:"comparison"`
	// QueueComparison is the work queue side by side: rumor's figure 11
	// and Redis's one-call-per-submit run.
	QueueComparison []ComparisonRow `json:"queue_comparison,omitempty"`
	Errors          []string        `json:"errors,omitempty"`
	Seconds         float64         `json:"seconds"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// run parses args, measures every peer asked for, prints the tables to out
// and writes the JSON report if asked.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	var (
		sizes      = fs.String("n", "10,30", "comma-separated sizes for the propagation figure (Redis subscribers; memberlist nodes)")
		updates    = fs.Int("updates", 200, "messages per size")
		tpSeconds  = fs.Float64("throughput-seconds", 10, "how long the throughput publisher writes")
		tpRecv     = fs.Int("throughput-receivers", 5, "receivers in the throughput figure (Redis subscribers; memberlist nodes besides the publisher)")
		short      = fs.Bool("short", false, "quick form: size 10 only, 100 messages, 3 s throughput, 100 work-queue tasks")
		payload    = fs.Int("payload", 200, "bytes per message")
		window     = fs.Int("window", 4096, "throughput: most messages the publisher may be ahead of the slowest receiver")
		drain      = fs.Duration("drain", 10*time.Second, "stop waiting for the last messages after this long without any delivery")
		drainMax   = fs.Duration("drain-max", 2*time.Minute, "and after this long in all")
		seed       = fs.Uint64("seed", 1, "seed for the write spacing")
		spaceMin   = fs.Duration("spacing-min", 10*time.Millisecond, "propagation: least gap between messages (rumor-bench: 10ms)")
		spaceMax   = fs.Duration("spacing-max", 20*time.Millisecond, "propagation: most gap between messages (rumor-bench: 20ms)")
		peers      = fs.String("peers", "redis,memberlist", "comma-separated peers to measure")
		figures    = fs.String("figures", "propagation,throughput,queue", "comma-separated figures to measure (queue: Redis only)")
		queueTasks = fs.Int("queue-tasks", 1000, "work queue: tasks the producer submits (rumor-bench: -queue-tasks)")
		queueWork  = fs.Int("queue-workers", 3, "work queue: worker connections (rumor-bench: one worker on each of 3 agents)")
		queueWait  = fs.Duration("queue-timeout", 250*time.Millisecond, "work queue: each BLMOVE's block timeout (rumor-bench: each take's wait)")
		queuePipe  = fs.Bool("queue-pipelined", true, "work queue: also measure a pipelined producer")
		redisHost  = fs.String("redis-host", "127.0.0.1", "Redis server host")
		redisPort  = fs.Int("redis-port", 6379, "Redis server port")
		redisPID   = fs.Int("redis-pid", 0, "Redis server's process id, to report its CPU (optional)")
		redisWait  = fs.Duration("redis-wait", 10*time.Second, "how long to retry connecting to Redis")
		mlInterval = fs.Duration("ml-gossip-interval", 0, "memberlist GossipInterval (0: DefaultLocalConfig's)")
		mlNodes    = fs.Int("ml-gossip-nodes", 0, "memberlist GossipNodes (0: DefaultLocalConfig's)")
		mlMult     = fs.Int("ml-retransmit-mult", 0, "memberlist RetransmitMult (0: DefaultLocalConfig's)")
		mlRelay    = fs.Bool("ml-relay", true, "memberlist nodes re-queue a message they get for the first time (as serf does)")
		formWithin = fs.Duration("form-timeout", 60*time.Second, "how long a memberlist cluster may take to form")
		rumorPath  = fs.String("rumor", "", "rumor-bench JSON report to compare with")
		jsonPath   = fs.String("json", "", "also write the report as JSON to this path")
		freePort   = fs.Bool("free-port", false, "print a free TCP port on 127.0.0.1 and exit (for the Makefile)")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: peers [flags]\n\nMeasures Redis pub/sub and hashicorp/memberlist with rumor-bench's method.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *freePort {
		port, err := pickFreePort()
		if err != nil {
			return err
		}
		fmt.Fprintln(out, port)
		return nil
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *short {
		for name, v := range map[string]string{"n": "10", "updates": "100", "throughput-seconds": "3", "queue-tasks": "100"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	p := params{updates: *updates, spacingMin: *spaceMin, spacingMax: *spaceMax,
		payload: *payload, drain: *drain, drainMax: *drainMax, tpDuration: time.Duration(*tpSeconds * float64(time.Second)),
		tpReceivers: *tpRecv, window: *window, sampleEvery: 100, seed: *seed,
		queue: queueParams{tasks: *queueTasks, workers: *queueWork, timeout: *queueWait, within: 2 * time.Minute, pipelined: *queuePipe}}
	var err error
	if p.sizes, err = parseSizes(*sizes); err != nil {
		return err
	}
	which, err := parsePeers(*peers)
	if err != nil {
		return err
	}
	figs, err := parseFigures(*figures)
	if err != nil {
		return err
	}
	switch {
	case p.updates < 1:
		return fmt.Errorf("-updates must be at least 1, got %d", p.updates)
	case p.tpDuration <= 0:
		return fmt.Errorf("-throughput-seconds must be positive, got %v", *tpSeconds)
	case p.tpReceivers < 1 || p.window < 1:
		return errors.New("-throughput-receivers and -window must be at least 1")
	case p.payload < 64:
		return fmt.Errorf("-payload must be at least 64 bytes, got %d", p.payload)
	case p.spacingMin < 0 || p.spacingMax < p.spacingMin:
		return errors.New("need 0 <= -spacing-min <= -spacing-max")
	case p.drain <= 0 || p.drainMax < p.drain:
		return errors.New("need 0 < -drain <= -drain-max")
	case p.queue.tasks < 1 || p.queue.workers < 1:
		return errors.New("-queue-tasks and -queue-workers must be at least 1")
	case p.queue.timeout < time.Millisecond:
		return errors.New("-queue-timeout must be at least 1ms")
	}
	var rumor *RumorFigures
	if *rumorPath != "" {
		if rumor, err = loadRumor(*rumorPath); err != nil {
			return err
		}
	}

	began, meter := time.Now(), startCPUMeter(0)
	rep := Report{Date: began.Format(time.RFC3339), Machine: machine(), Short: *short, Rumor: rumor,
		Settings: Settings{Sizes: p.sizes, Updates: p.updates, SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)}, PayloadBytes: p.payload,
			ThroughputSeconds: p.tpDuration.Seconds(), TPReceivers: p.tpReceivers, Window: p.window, SampleEvery: p.sampleEvery,
			DrainIdleSeconds: p.drain.Seconds(), DrainMaxSeconds: p.drainMax.Seconds(), Seed: p.seed,
			QueueTasks: p.queue.tasks, QueueWorkers: p.queue.workers, QueueTimeoutMs: benchstat.Ms(p.queue.timeout)}}
	mlOpts := memberlistOptions{gossipInterval: *mlInterval, gossipNodes: *mlNodes, retransmitMult: *mlMult,
		relay: *mlRelay, formTimeout: *formWithin}
	if which["memberlist"] {
		s := mlOpts.settings(moduleVersion("github.com/hashicorp/memberlist"), append(slices.Clone(p.sizes), p.tpReceivers+1))
		rep.MLSettings = &s
	}
	var errs []error
	fail := func(what string, err error) {
		err = fmt.Errorf("%s: %w", what, err)
		errs = append(errs, err)
		rep.Errors = append(rep.Errors, err.Error())
		fmt.Fprintf(out, "  FAILED: %v\n", err)
	}
	rcfg := redisConfig{addr: net.JoinHostPort(*redisHost, strconv.Itoa(*redisPort)), pid: *redisPID, wait: *redisWait}
	if which["redis"] {
		info, err := redisServerInfo(ctx, rcfg)
		if err != nil {
			printHeader(out, rep)
			fail("redis", err)
		} else {
			rep.RedisInfo = &info
		}
	}
	if len(errs) == 0 {
		printHeader(out, rep)
	}

	measure := func(name string, open opener, tpSize int) *PeerReport {
		pr := &PeerReport{}
		for _, n := range p.sizes {
			if ctx.Err() != nil || !figs["propagation"] {
				break
			}
			fmt.Fprintf(out, "[%s] propagation: N=%d, %d messages...\n", name, n, p.updates)
			r, err := runPropagation(ctx, name, open, n, p)
			if err != nil {
				fail(fmt.Sprintf("%s propagation N=%d", name, n), err)
			}
			if r.Latency.N > 0 || err == nil {
				pr.Propagation = append(pr.Propagation, r)
			}
		}
		if ctx.Err() == nil && figs["throughput"] {
			fmt.Fprintf(out, "[%s] throughput: %d receivers, publishing for %v...\n", name, p.tpReceivers, p.tpDuration)
			t, err := runThroughput(ctx, name, open, tpSize, p)
			if err != nil {
				fail(name+" throughput", err)
			}
			if t.Written > 0 {
				pr.Throughput = &t
			}
		}
		return pr
	}
	if which["redis"] && rep.RedisInfo != nil {
		rep.Redis = measure("redis", openRedis(rcfg), p.tpReceivers)
		modes := []string{modeOneCall}
		if p.queue.pipelined {
			modes = append(modes, modePipelined)
		}
		for _, mode := range modes {
			if ctx.Err() != nil || !figs["queue"] {
				break
			}
			fmt.Fprintf(out, "[redis] work queue: %d tasks, %s, %d workers...\n", p.queue.tasks, mode, p.queue.workers)
			r, err := runRedisQueue(ctx, rcfg, p.queue, p.payload, mode)
			if err == nil {
				err = r.problem()
			}
			if err != nil {
				fail("redis work queue, "+mode, err)
			}
			if r.Done > 0 || err == nil {
				rep.Redis.Queue = append(rep.Redis.Queue, r)
			}
		}
	}
	if which["memberlist"] && ctx.Err() == nil && (figs["propagation"] || figs["throughput"]) {
		rep.Memberlist = measure("memberlist", openMemberlist(mlOpts), p.tpReceivers+1)
	}
	if err := ctx.Err(); err != nil {
		fail("interrupted", err)
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Machine.LoadEnd = benchstat.LoadAverage()
	_, _, rep.Machine.OtherCores = meter.cores()
	rep.Comparison = compare(rep)
	rep.QueueComparison = compareQueue(rep)

	printReport(out, rep)
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("write JSON: %w", err))
		} else {
			fmt.Fprintf(out, "\nJSON report written to %s\n", *jsonPath)
		}
	}
	return errors.Join(errs...)
}

// parseSizes parses the -n list.
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("-n: %q is not a size of at least 2", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-n: no sizes")
	}
	return out, nil
}

// parsePeers parses the -peers list.
func parsePeers(s string) (map[string]bool, error) {
	out := make(map[string]bool)
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "":
		case "redis", "memberlist":
			out[f] = true
		default:
			return nil, fmt.Errorf("-peers: unknown peer %q (redis, memberlist)", f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-peers: none")
	}
	return out, nil
}

// parseFigures parses the -figures list.
func parseFigures(s string) (map[string]bool, error) {
	out := make(map[string]bool)
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "":
		case "propagation", "throughput", "queue":
			out[f] = true
		default:
			return nil, fmt.Errorf("-figures: unknown figure %q (propagation, throughput, queue)", f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-figures: none")
	}
	return out, nil
}

// pickFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func pickFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// moduleVersion returns the version of module path this binary was built
// with, or "unknown".
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

// machine describes this host and build.
func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, LoadStart: benchstat.LoadAverage(), LoadEnd: -1}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// printHeader prints the machine, the date and the settings.
func printHeader(out io.Writer, rep Report) {
	m, s := rep.Machine, rep.Settings
	fmt.Fprintf(out, "rumor peers bench  %s\n", rep.Date)
	fmt.Fprintf(out, "machine: %d CPU, GOMAXPROCS %d, %s %s/%s", m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if m.CPU != "" {
		fmt.Fprintf(out, ", %s", m.CPU)
	}
	fmt.Fprintln(out)
	if m.LoadStart >= 0 {
		fmt.Fprintf(out, "load average at start: %.2f", m.LoadStart)
		if m.LoadStart > 0.5*float64(m.NumCPU) {
			fmt.Fprintf(out, "  (WARNING: the machine is busy; latencies and throughput will be pessimistic)")
		}
		fmt.Fprintln(out)
	}
	mode := "full"
	if rep.Short {
		mode = "short"
	}
	fmt.Fprintf(out, "form: %s; payload %d B; propagation N=%s, %d messages every %d-%d ms; throughput %d receivers for %.0f s, window %d; work queue %d tasks, %d workers, BLMOVE timeout %s ms\n",
		mode, s.PayloadBytes, joinInts(s.Sizes), s.Updates, s.SpacingMs[0], s.SpacingMs[1], s.TPReceivers, s.ThroughputSeconds, s.Window,
		s.QueueTasks, s.QueueWorkers, benchstat.FmtMs(s.QueueTimeoutMs))
	if r := rep.RedisInfo; r != nil {
		fmt.Fprintf(out, "redis: server %s at %s, save %s, appendonly %s; client: %s\n", r.Version, r.Addr, r.Save, r.AppendOnly, r.Client)
	}
	if ml := rep.MLSettings; ml != nil {
		fmt.Fprintf(out, "memberlist %s: %s, GossipInterval %v ms, GossipNodes %d, RetransmitMult %d, UDPBufferSize %d, HandoffQueueDepth %d, ProbeInterval %v ms, relay %v\n",
			ml.Version, ml.Base, ml.GossipIntervalMs, ml.GossipNodes, ml.RetransmitMult, ml.UDPBufferSize, ml.HandoffQueue, ml.ProbeIntervalMs, ml.Relay)
		sizes := slices.Sorted(maps.Keys(ml.RetransmitLimits))
		limits := make([]string, len(sizes))
		for i, n := range sizes {
			limits[i] = fmt.Sprintf("N=%d: %d", n, ml.RetransmitLimits[n])
		}
		fmt.Fprintf(out, "  every GossipInterval a node sends GossipNodes UDP packets of at most UDPBufferSize B (about %d messages of %d B each);\n",
			(ml.UDPBufferSize-2)/(s.PayloadBytes+3), s.PayloadBytes)
		fmt.Fprintf(out, "  its queue sends each message RetransmitMult*ceil(log10(N+1)) times: %s\n", strings.Join(limits, ", "))
	}
	if r := rep.Rumor; r != nil {
		fmt.Fprintf(out, "rumor: figures from %s (rumor-bench run of %s, %s form, load at start %.2f)\n", r.Path, r.Date, formName(r.Short), r.LoadStart)
	}
}

func formName(short bool) string {
	if short {
		return "short"
	}
	return "full"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// printReport prints every peer's figures and the side-by-side table.
func printReport(out io.Writer, rep Report) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var propagated, throughput bool
	for _, pr := range []*PeerReport{rep.Redis, rep.Memberlist} {
		propagated = propagated || pr != nil && len(pr.Propagation) > 0
		throughput = throughput || pr != nil && pr.Throughput != nil
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "1. Propagation: %d B messages every %d-%d ms, from just before publish until the last receiver has it\n",
		rep.Settings.PayloadBytes, rep.Settings.SpacingMs[0], rep.Settings.SpacingMs[1])
	if !propagated {
		fmt.Fprintln(tw, "(not measured)")
	} else {
		fmt.Fprintln(tw, "peer\tN\treceivers\twriters\tupdates\tlost\tp50 ms\tp99 ms\tmax ms\tsamples\tformed in\tdup/delivery\tdropped\tCPU bench/server/others\t")
	}
	for _, pr := range []*PeerReport{rep.Redis, rep.Memberlist} {
		if pr == nil {
			continue
		}
		for _, r := range pr.Propagation {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%.2f s\t%.2f\t%d\t%.2f / %.2f / %.2f of %d\t\n",
				r.Peer, r.N, r.Receivers, r.Writers, r.Updates, r.Lost, benchstat.FmtMs(r.Latency.P50Ms), benchstat.FmtMs(r.Latency.P99Ms), benchstat.FmtMs(r.Latency.MaxMs),
				r.Latency.N, r.FormMs/1000, r.DupPerDelivery, r.Stats.Dropped, r.CPUCores, r.ServerCores, r.OtherCores, rep.Machine.NumCPU)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "2. Throughput: 1 publisher, %d receivers, %d B messages, window %d, every delivery counted on every receiver\n",
		rep.Settings.TPReceivers, rep.Settings.PayloadBytes, rep.Settings.Window)
	if !throughput {
		fmt.Fprintln(tw, "(not measured)")
	} else {
		fmt.Fprintln(tw, "peer\twritten\tin s\tslowest got\tlost\tupdates/s\tlatency under load p50/p99/max\tdrain s\tdup/delivery\tdropped\tCPU bench/server/others\t")
	}
	for _, pr := range []*PeerReport{rep.Redis, rep.Memberlist} {
		if pr == nil || pr.Throughput == nil {
			continue
		}
		t := pr.Throughput
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%d\t%d\t%.0f\t%s\t%.1f\t%.2f\t%d\t%.2f / %.2f / %.2f of %d\t\n",
			t.Peer, t.Written, t.WriteSeconds, t.SlowestDelivered, t.Lost, t.UpdatesPerSec, t.Latency, t.DrainSeconds,
			t.DupPerDelivery, t.Stats.Dropped, t.CPUCores, t.ServerCores, t.OtherCores, rep.Machine.NumCPU)
	}
	tw.Flush()
	printQueue(out, rep)
	printProblems(out, rep)
	printComparison(out, rep)
	printQueueComparison(out, rep)
	fmt.Fprintf(out, "\ntotal %.1f s", rep.Seconds)
	if rep.Machine.LoadEnd >= 0 {
		fmt.Fprintf(out, ", load average at end %.2f", rep.Machine.LoadEnd)
	}
	fmt.Fprintf(out, ", other processes (Redis server included) used %.2f of %d cores meanwhile\n", rep.Machine.OtherCores, rep.Machine.NumCPU)
	for _, e := range rep.Errors {
		fmt.Fprintf(out, "ERROR: %s\n", e)
	}
}

// printProblems lists what the peers logged as warnings or errors, lost
// warm-up messages and UDP drops.
func printProblems(out io.Writer, rep Report) {
	var lines []string
	add := func(what string, warmupLost int, s peerStats) {
		if warmupLost > 0 {
			lines = append(lines, fmt.Sprintf("  %s: %d untimed warm-up message(s) never reached every receiver", what, warmupLost))
		}
		if s.UDPRcvbufErrors > 0 || s.UDPInErrors > 0 {
			lines = append(lines, fmt.Sprintf("  %s: the machine counted %d UDP receive-buffer overflows, %d UDP input errors meanwhile",
				what, s.UDPRcvbufErrors, s.UDPInErrors))
		}
		if s.ProblemCount == 0 {
			return
		}
		lines = append(lines, fmt.Sprintf("  %s: %d warnings/errors logged, e.g.:", what, s.ProblemCount))
		for _, p := range s.Problems[:min(len(s.Problems), 3)] {
			lines = append(lines, "    "+p)
		}
	}
	for _, pr := range []*PeerReport{rep.Redis, rep.Memberlist} {
		if pr == nil {
			continue
		}
		for _, r := range pr.Propagation {
			add(fmt.Sprintf("%s propagation N=%d", r.Peer, r.N), r.WarmupLost, r.Stats)
		}
		if t := pr.Throughput; t != nil {
			add(t.Peer+" throughput", t.WarmupLost, t.Stats)
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(out, "\nnotes:")
		fmt.Fprintln(out, strings.Join(slices.Compact(lines), "\n"))
	}
}
