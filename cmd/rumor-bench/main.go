// Command rumor-bench measures rumor on 127.0.0.1 over real TCP + Noise,
// with agents in its own process and, where the figure asks for it, as
// `rumor agent` processes, and prints a plain table (and, with -json, a
// JSON report):
//
//  1. Propagation: svc set from a rotating writer, timed from just before
//     the write to the moment the last other agent applied it, on one
//     clock. For each size of -n, agents in this process (store watchers
//     on every agent); for each size of -proc-n, agent processes: the bench
//     opens a watch stream (rpc.Client.Watch, NDJSON over the unix socket)
//     on every agent before writing through the writer's rpc.Client, so
//     that latency includes the write RPC and the stream's delivery.
//     After each in-process size, the floor (-floor, on by default): bare
//     go-libp2p-pubsub GossipSub on hosts with rumor's settings, the same
//     number of messages of rumor's message size with the same spacing,
//     timed the same way; and rumor's p50 and p99 ratios to it (target:
//     p99 at most 1.5 times the floor's).
//  2. Throughput: one publisher adds blacklist entries as fast as the
//     receivers keep up, for a fixed time (30 s); updates/s is what the
//     slowest receiver applied divided by the time until it had everything,
//     with the propagation latency of every 100th write under that load.
//  3. Wire cost: bytes each receiver took in per update during that run.
//  4. Memory: heap held per svc key by an in-memory store, at 100 K and
//     1 M keys (20 K with -short); and the resident memory (VmRSS) of one
//     idle `rumor agent` process after 20 s (3 s with -short).
//
// And under failure (README "Under failure"), measured, not asserted:
//
//  5. Failure detection: 10 `rumor agent` processes with the detector's
//     default settings, each owning one svc entry; one non-bootstrap agent
//     is killed with SIGKILL, timed until every survivor's members view
//     (polled over its local API) shows it dead and its svc entry down,
//     then restarted from its data dir (same identity) and timed until it
//     is alive everywhere again.
//  6. Catch-up: 3 agents hold K blacklist keys; a new agent joins and is
//     timed until its store holds them all; then it is closed and its
//     restart with the K keys on disk is timed.
//  7. Partition heal: 6 agents cut 3|3 (netcut connection gaters) write
//     on both sides and both sides grant the same kernel; after the heal,
//     the time until every agent agrees again and the double-grant window
//     (both granted until the loser's lease "lost" event).
//  8. Idle: 30 agents (-idle-agents) with the default membership settings
//     (heartbeat 1 s, suspect 1.5 s, dead 4 s) left idle for 10 minutes
//     (20 s with -short); every suspect and dead verdict any agent reaches
//     about another is false and counted, from the agents' membership logs
//     and by polling their Members(); with the CPU used and the load
//     average.
//  9. Membership cost: idle agents in one process at N = 10, 30, 100
//     (-member-n), the defaults; membership messages and bytes received
//     per agent per second, and every libp2p byte, over 20 s (-member-for).
//  10. Priority lane (issue 17): 5 agents in this process; agent 0 adds
//     blacklist entries one at a time, each timed until every other agent
//     applied it, first idle, then while agent 0 floods svc writes in a
//     loop as fast as it can (at most -lane-window unpublished): p50/p99
//     of both, the svc rate achieved, and the ratio of the p99s against
//     the target (at most 2x).
//  11. Work queue (issue 16): 3 agents in this process with the default
//     config; agent 0 submits -queue-tasks tasks (TaskSubmit, one call
//     per task) as fast as it can while one worker per agent loops
//     TaskTake (a 250 ms wait) then TaskUpdate done: tasks/s submitted
//     and drained, take and submit-to-done latency, tasks taken twice
//     and lost (both must be 0). bench/peers measures Redis's list
//     recipe (BLMOVE) the same way.
//
// Figures 1 (-proc-n), 4 (idle RSS) and 5 need the rumor binary:
// -rumor-bin, or else rumor-bench builds ./cmd/rumor of the module it runs
// in into a temp dir, statically linked as `make build` does.
// Agent processes get their own process group and are killed on every
// exit path (and by the kernel if the bench itself dies).
//
// Usage:
//
//	rumor-bench [-short] [-n 10,30] [-floor=true] [-floor-beat 0] [-proc-n 10,30] [-updates 200] [-proc-updates 200] [-throughput-seconds 30] [-phases 1,2,3,4,5,6,7,8,9,10,11] [-idle 10m] [-member-n 10,30,100] [-member-for 20s] [-lane-adds 100] [-queue-tasks 1000] [-rumor-bin path] [-json out.json]
//
// It exits 0 when every phase ran and every update arrived, 1 otherwise,
// with the reason on stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
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
	"github.com/rumor-dev/rumor/config"
)

// params are the benchmark's knobs, from the flags.
type params struct {
	sizes       []int
	updates     int
	spacingMin  time.Duration
	spacingMax  time.Duration
	payload     int
	namespace   string // figure 1 in-process: svc or kv writes
	drain       time.Duration
	tpAgents    int
	tpDuration  time.Duration
	writers     int
	window      int
	sampleEvery int
	memKeys     []int // key counts for the memory figure, one store each
	rssIdle     time.Duration
	cpuProfile  string
	timeline    io.Writer // nil: no throughput timeline
	cluster     clusterOptions
	phases      map[int]bool // which figures to measure
	failure     failureParams
	catchUp     catchUpParams
	catchUpKeys []int
	partition   partitionParams
	idle        idleParams
	proc        procParams  // propagation with agent processes
	floor       floorParams // figure 1's floor: bare GossipSub (floor.go)
	memberCost  memberCostParams
	lane        laneParams  // figure 10
	queue       queueParams // figure 11
	procs       procOptions // how agent processes start (bin set once built)
}

// Machine describes where the figures were taken.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPU        string `json:"cpu,omitempty"`
	Revision   string `json:"revision,omitempty"`
	// LoadStart and LoadEnd are the 1-minute load average (Linux) when the
	// run began and ended; -1 where unknown. Other processes on the machine
	// take CPU from the agents and inflate every latency.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
	// OtherCores is the CPU other processes used during the run, in cores
	// on average (Linux; 0 where unknown).
	OtherCores float64 `json:"other_cores"`
}

// Report is everything rumor-bench measured; -json writes it.
type Report struct {
	Date        string  `json:"date"`
	Machine     Machine `json:"machine"`
	Short       bool    `json:"short"`
	HeartbeatMs int     `json:"heartbeat_ms"`
	// AgentGOMAXPROCS is the agent processes' GOMAXPROCS (0: Go's default).
	AgentGOMAXPROCS int                 `json:"agent_gomaxprocs,omitempty"`
	Propagation     []PropagationResult `json:"propagation"`
	// PropagationProcs is figure 1 with `rumor agent` processes; Floor is
	// figure 1's floor at each in-process size (bare GossipSub with
	// rumor's settings) with rumor's ratios to it.
	PropagationProcs []PropagationResult `json:"propagation_processes,omitempty"`
	Floor            []FloorResult       `json:"floor,omitempty"`
	Throughput       *ThroughputResult   `json:"throughput,omitempty"`
	Memory           []MemoryResult      `json:"memory,omitempty"`
	IdleRSS          *RSSResult          `json:"idle_rss,omitempty"`
	Failure          *FailureResult      `json:"failure_detection,omitempty"`
	CatchUp          []CatchUpResult     `json:"catch_up,omitempty"`
	Partition        *PartitionResult    `json:"partition_heal,omitempty"`
	Idle             *IdleResult         `json:"idle,omitempty"`
	MemberCost       []MemberCostResult  `json:"membership_cost,omitempty"`
	Lane             *LaneResult         `json:"priority_lane,omitempty"`
	Queue            *QueueResult        `json:"work_queue,omitempty"`
	Errors           []string            `json:"errors,omitempty"`
	Seconds          float64             `json:"seconds"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rumor-bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs every phase, prints the tables to out and writes
// the JSON report if asked. It returns the phases' failures joined.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rumor-bench", flag.ContinueOnError)
	defaults := config.DefaultConfig()
	var (
		sizes      = fs.String("n", "10,30", "propagation: comma-separated cluster sizes with the agents in this process (0: none; 100 saturates a 2-core machine)")
		procSizes  = fs.String("proc-n", "10,30", "propagation: comma-separated cluster sizes with `rumor agent` processes (0: none)")
		updates    = fs.Int("updates", 200, "propagation: svc writes per in-process cluster size")
		procUpd    = fs.Int("proc-updates", 200, "propagation: svc writes per agent-process cluster size")
		spaceMin   = fs.Duration("spacing-min", 10*time.Millisecond, "propagation: least time between two writes")
		spaceMax   = fs.Duration("spacing-max", 20*time.Millisecond, "propagation: most time between two writes (drawn uniformly from min..max)")
		agentProcs = fs.Int("agent-gomaxprocs", 0, "GOMAXPROCS of each `rumor agent` process (0: Go's default, one per CPU; 1 suits many agents sharing few cores)")
		rumorBin   = fs.String("rumor-bin", "", "rumor binary for the agent processes of figures 1 (-proc-n) and 5 (default: go build ./cmd/rumor into a temp dir)")
		tpSeconds  = fs.Float64("throughput-seconds", 30, "how long the throughput publisher writes")
		short      = fs.Bool("short", false, "quick form for CI: in-process size 8 with 100 updates and its floor, 5 agent processes with 50 updates, 3 s throughput, 20K keys; 3 kill -9 trials at 200ms/600ms/2s, 10K-key catch-up, 3 partition rounds, 20 s idle, 10 bl adds per phase of the priority lane, 100 work-queue tasks")
		jsonPath   = fs.String("json", "", "also write the report as JSON to this path")
		memKeys    = fs.String("mem-keys", "100000,1000000", "memory: comma-separated key counts, one fresh store each")
		rssIdle    = fs.Duration("rss-idle", 20*time.Second, "memory: how long one agent process idles before its RSS is read")
		payload    = fs.Int("payload", 200, "bytes of payload per write")
		namespace  = fs.String("namespace", "svc", "propagation (-n): what the writes are, svc sets or kv puts")
		writers    = fs.Int("writers", 2, "publisher goroutines in the throughput run")
		window     = fs.Int("window", 4096, "throughput: most writes the publisher may be ahead of the slowest receiver")
		heartbeat  = fs.Duration("heartbeat", time.Second, "agents' heartbeat interval (the agent's default is 1s; a slower one stretches suspect_after and dead_after by the same factor)")
		formWithin = fs.Duration("form-timeout", 90*time.Second, "how long a cluster may take to form")
		drain      = fs.Duration("drain", 10*time.Second, "how long to wait for the last writes to arrive")
		seed       = fs.Uint64("seed", 1, "seed for the agents' and the writers' randomness")
		timeline   = fs.Bool("timeline", false, "print the throughput run's progress every 100 ms to stderr")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the throughput run to this path")
		phases     = fs.String("phases", "1,2,3,4,5,6,7,8,9,10,11", "comma-separated figures to measure (2 and 3 are one run)")
		memberN    = fs.String("member-n", "10,30,100", "membership cost: comma-separated cluster sizes of idle agents in this process")
		memberFor  = fs.Duration("member-for", 20*time.Second, "membership cost: how long each size is measured")
		laneAdds   = fs.Int("lane-adds", 100, "priority lane: bl adds timed idle, and again under the svc flood")
		laneWindow = fs.Int("lane-window", 8192, "priority lane: most svc writes the flooder keeps unpublished")
		queueTasks = fs.Int("queue-tasks", 1000, "work queue: tasks submitted on agent 0 and drained by one worker per agent")
		fdAgents   = fs.Int("fd-agents", 10, "failure detection: cluster size")
		fdTrials   = fs.Int("fd-trials", 20, "failure detection: kill -9/restart trials")
		fdPoll     = fs.Duration("fd-poll", 50*time.Millisecond, "failure detection: how often the survivors' local APIs are polled")
		fdBeat     = fs.Duration("fd-heartbeat", defaults.Heartbeat, "failure detection: agents' heartbeat (default: the agent's default)")
		fdSuspect  = fs.Duration("fd-suspect", defaults.SuspectAfter, "failure detection: suspect_after (default: the agent's default)")
		fdDead     = fs.Duration("fd-dead", defaults.DeadAfter, "failure detection: dead_after (default: the agent's default)")
		cuKeys     = fs.String("catchup-keys", "10000,100000", "catch-up: comma-separated key counts the cluster holds when a new agent joins")
		ptRounds   = fs.Int("partition-rounds", 10, "partition heal: partition/heal rounds")
		idleFor    = fs.Duration("idle", 10*time.Minute, "idle: how long the agents stay idle while false verdicts are counted")
		idleAgents = fs.Int("idle-agents", 30, "idle: cluster size")
		floor      = fs.Bool("floor", true, "propagation: after each in-process size of -n, measure the floor (bare GossipSub with rumor's settings, same writes) and rumor's ratios to it")
		floorBeat  = fs.Duration("floor-beat", 0, "floor: every node also publishes one message this often on the node topic, as rumor's per-node heartbeat (0: off)")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: rumor-bench [flags]\n\nMeasures rumor agents in this process and as `rumor agent` processes: propagation latency, throughput, wire cost, memory per key;\nunder failure: failure detection (kill -9 of agent processes), catch-up of a new agent and restart, partition heal;\nidle: false suspect/dead verdicts among idle agents.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *short {
		// -short picks the quick form; flags given explicitly still win.
		for name, v := range map[string]string{"n": "8", "updates": "100", "proc-n": "5", "proc-updates": "50", "throughput-seconds": "3", "mem-keys": "20000", "rss-idle": "3s",
			"fd-trials": "3", "fd-heartbeat": "200ms", "fd-suspect": "600ms", "fd-dead": "2s",
			"catchup-keys": "10000", "partition-rounds": "3", "idle": "20s", "member-n": "5,10", "member-for": "3s", "lane-adds": "10", "queue-tasks": "100"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	procDetector := config.DefaultConfig()
	scaleDetector(&procDetector, *heartbeat)
	p := params{
		updates: *updates, spacingMin: *spaceMin, spacingMax: max(*spaceMax, *spaceMin),
		payload: *payload, namespace: *namespace, drain: *drain,
		tpAgents: 6, tpDuration: time.Duration(*tpSeconds * float64(time.Second)),
		writers: *writers, window: *window, sampleEvery: 100,
		cpuProfile: *cpuProfile,
		rssIdle:    *rssIdle,
		timeline:   timelineOut(*timeline),
		cluster:    clusterOptions{heartbeat: *heartbeat, formTimeout: *formWithin, settle: 2 * time.Second, seed: *seed},
		failure: failureParams{agents: *fdAgents, trials: *fdTrials, heartbeat: *fdBeat, suspect: *fdSuspect, dead: *fdDead,
			poll: *fdPoll, timeoutSlack: 15 * time.Second, rejoinAfter: 60 * time.Second},
		proc:  procParams{updates: *procUpd},
		floor: defaultFloorParams(*floor, *floorBeat),
		procs: procOptions{heartbeat: procDetector.Heartbeat, suspect: procDetector.SuspectAfter, dead: procDetector.DeadAfter,
			formTimeout: *formWithin, settle: 2 * time.Second, startTimeout: 30 * time.Second, gomaxprocs: *agentProcs},
		catchUp: catchUpParams{agents: 3, window: 4096, poll: 20 * time.Millisecond},
		partition: partitionParams{agents: 6, rounds: *ptRounds, keysPerSide: 20, settle: 100 * time.Millisecond,
			redialMin: 50 * time.Millisecond, redialMax: 500 * time.Millisecond, leaseTTL: time.Minute,
			poll: 10 * time.Millisecond, within: 30 * time.Second},
		idle: idleParams{agents: *idleAgents, duration: *idleFor, poll: 250 * time.Millisecond, progress: time.Minute},
		lane: laneParams{agents: 5, adds: *laneAdds, gap: 10 * time.Millisecond, window: *laneWindow, keys: 4096,
			within: 10 * time.Second, ramp: 300 * time.Millisecond, target: 2},
		queue: queueParams{agents: 3, tasks: *queueTasks, wait: 250 * time.Millisecond, visibility: time.Minute,
			within: 2 * time.Minute, agree: 10 * time.Second},
	}
	var err error
	if p.sizes, err = parseSizesOrNone("-n", *sizes); err != nil {
		return err
	}
	if p.proc.sizes, err = parseSizesOrNone("-proc-n", *procSizes); err != nil {
		return err
	}
	if p.phases, err = parsePhases(*phases); err != nil {
		return err
	}
	if p.memberCost.sizes, err = parseSizesOrNone("-member-n", *memberN); err != nil {
		return err
	}
	p.memberCost.measure = *memberFor
	if p.catchUpKeys, err = parseCounts("-catchup-keys", *cuKeys); err != nil {
		return err
	}
	if p.memKeys, err = parseCounts("-mem-keys", *memKeys); err != nil {
		return err
	}
	switch {
	case p.updates < 1 || p.proc.updates < 1:
		return fmt.Errorf("-updates and -proc-updates must be at least 1, got %d and %d", p.updates, p.proc.updates)
	case p.failure.poll <= 0:
		return fmt.Errorf("-fd-poll must be positive, got %v", p.failure.poll)
	case p.tpDuration <= 0:
		return fmt.Errorf("-throughput-seconds must be positive, got %v", *tpSeconds)
	case p.writers < 1 || p.window < 1:
		return fmt.Errorf("-writers and -window must be at least 1")
	case p.rssIdle <= 0:
		return fmt.Errorf("-rss-idle must be positive, got %v", p.rssIdle)
	case p.procs.gomaxprocs < 0:
		return fmt.Errorf("-agent-gomaxprocs must be 0 (Go's default) or positive, got %d", p.procs.gomaxprocs)
	case p.namespace != "svc" && p.namespace != "kv":
		return fmt.Errorf("-namespace must be svc or kv, got %q", p.namespace)
	case p.payload < 64:
		return fmt.Errorf("-payload must be at least 64 bytes, got %d", p.payload)
	case p.failure.agents < 3 || p.failure.trials < 1:
		return fmt.Errorf("-fd-agents must be at least 3 and -fd-trials at least 1")
	case p.failure.heartbeat <= 0 || p.failure.suspect <= 0 || p.failure.dead <= p.failure.suspect:
		return fmt.Errorf("failure detection needs 0 < -fd-heartbeat, 0 < -fd-suspect < -fd-dead")
	case p.partition.rounds < 1:
		return fmt.Errorf("-partition-rounds must be at least 1, got %d", p.partition.rounds)
	case p.idle.agents < 2 || p.idle.duration <= 0:
		return fmt.Errorf("-idle-agents must be at least 2 and -idle positive")
	case p.lane.adds < 1 || p.lane.window < 1:
		return fmt.Errorf("-lane-adds and -lane-window must be at least 1")
	case p.queue.tasks < 1:
		return fmt.Errorf("-queue-tasks must be at least 1, got %d", p.queue.tasks)
	}

	began, meter := time.Now(), startCPUMeter()
	rep := Report{Date: began.Format(time.RFC3339), Machine: machine(), Short: *short, HeartbeatMs: int(*heartbeat / time.Millisecond),
		AgentGOMAXPROCS: *agentProcs}
	printHeader(out, rep, p)
	var errs []error
	fail := func(phase string, err error) {
		err = fmt.Errorf("%s: %w", phase, err)
		errs = append(errs, err)
		rep.Errors = append(rep.Errors, err.Error())
		fmt.Fprintf(out, "  FAILED: %v\n", err)
	}

	// Memory first: the heap is quietest before any agent has run.
	// Each size fills a fresh store; the previous one is garbage by then.
	for _, perBatch := range []int{256, 1} {
		for _, k := range p.memKeys {
			if !p.phases[4] || ctx.Err() != nil {
				break
			}
			fmt.Fprintf(out, "[4] memory: filling an in-memory store with %d svc keys signed %d a batch...\n", k, perBatch)
			if m, err := runMemory(k, p.payload, perBatch); err != nil {
				fail(fmt.Sprintf("memory K=%d", k), err)
			} else {
				rep.Memory = append(rep.Memory, m)
			}
		}
	}

	// The rumor binary for the agent processes, built on first use.
	var (
		binPath  = *rumorBin
		binErr   error
		binDir   string
		binBuilt bool
	)
	defer func() {
		if binDir != "" {
			_ = os.RemoveAll(binDir)
		}
	}()
	rumorBinary := func() (string, error) {
		if binPath != "" || binErr != nil || binBuilt {
			return binPath, binErr
		}
		binBuilt = true
		fmt.Fprintln(out, "building the rumor binary for the agent processes (go build ./cmd/rumor)...")
		if binDir, binErr = os.MkdirTemp("", "rumor-bench-bin-"); binErr == nil {
			binPath, binErr = buildRumor(ctx, binDir)
		}
		return binPath, binErr
	}

	for _, n := range p.sizes {
		if ctx.Err() != nil || !p.phases[1] {
			break
		}
		fmt.Fprintf(out, "[1] propagation: %d agents, %d %s writes...\n", n, p.updates, p.namespace)
		r, err := runPropagation(ctx, n, p)
		if err == nil && r.Lost > 0 {
			err = fmt.Errorf("%d of %d writes never reached every agent within %v", r.Lost, r.Updates, p.drain)
		}
		if err != nil {
			fail(fmt.Sprintf("propagation N=%d", n), err)
		}
		if r.Latency.N > 0 || err == nil {
			rep.Propagation = append(rep.Propagation, r)
		}
		runFloorFigure(ctx, out, n, p, &rep, fail)
	}

	for _, n := range p.proc.sizes {
		if ctx.Err() != nil || !p.phases[1] {
			break
		}
		bin, err := rumorBinary()
		if err != nil {
			fail("propagation with agent processes", err)
			break
		}
		fmt.Fprintf(out, "[1] propagation: %d agent processes, %d svc writes...\n", n, p.proc.updates)
		opt := p.procs
		opt.bin = bin
		r, err := runProcPropagation(ctx, n, opt, p)
		if err == nil && r.Lost > 0 {
			err = fmt.Errorf("%d of %d writes never reached every agent within %v of the last write", r.Lost, r.Updates, p.drain)
		}
		if err != nil {
			fail(fmt.Sprintf("propagation with %d agent processes", n), err)
		}
		if r.Latency.N > 0 || err == nil {
			rep.PropagationProcs = append(rep.PropagationProcs, r)
		}
	}

	if ctx.Err() == nil && p.phases[4] {
		if bin, err := rumorBinary(); err != nil {
			fail("idle RSS", err)
		} else {
			fmt.Fprintf(out, "[4] idle RSS: one agent process, idle for %v...\n", p.rssIdle)
			opt := p.procs
			opt.bin = bin
			if r, err := runRSS(ctx, opt, p.rssIdle); err != nil {
				fail("idle RSS", err)
			} else {
				rep.IdleRSS = &r
			}
		}
	}

	if ctx.Err() == nil && (p.phases[2] || p.phases[3]) {
		fmt.Fprintf(out, "[2] throughput: %d agents, publishing for %v...\n", p.tpAgents, p.tpDuration)
		t, err := runThroughput(ctx, p)
		if err == nil && t.Lost > 0 {
			err = fmt.Errorf("%d of %d writes never reached the slowest receiver within %v", t.Lost, t.Written, p.drain)
		}
		if err != nil {
			fail("throughput", err)
		}
		if t.Written > 0 {
			rep.Throughput = &t
		}
	}
	runFailureFigures(ctx, out, p, rumorBinary, &rep, fail)
	runIdleFigure(ctx, out, p, &rep, fail)
	runMemberCostFigure(ctx, out, p, &rep, fail)
	runLaneFigure(ctx, out, p, &rep, fail)
	runQueueFigure(ctx, out, p, &rep, fail)
	if err := ctx.Err(); err != nil {
		fail("interrupted", err)
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Machine.LoadEnd = benchstat.LoadAverage()
	_, rep.Machine.OtherCores = meter.cores()

	printReport(out, rep, p)
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

// timelineOut returns where -timeline prints, nil when off.
func timelineOut(on bool) io.Writer {
	if on {
		return os.Stderr
	}
	return nil
}

// parseSizesOrNone parses a list of cluster sizes for flag; "0" (or
// "none") is no sizes.
func parseSizesOrNone(flag, s string) ([]int, error) {
	if t := strings.TrimSpace(s); t == "0" || t == "none" {
		return nil, nil
	}
	out, err := parseSizes(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return out, nil
}

// parseSizes parses a list of cluster sizes of at least 2.
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("%q is not a cluster size of at least 2", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no cluster sizes")
	}
	return out, nil
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
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m.Revision = s.Value
			}
		}
	}
	return m
}

// printHeader prints the machine, the date and the settings.
func printHeader(out io.Writer, rep Report, p params) {
	m := rep.Machine
	fmt.Fprintf(out, "rumor-bench  %s\n", rep.Date)
	fmt.Fprintf(out, "machine: %d CPU, GOMAXPROCS %d, %s %s/%s", m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if m.CPU != "" {
		fmt.Fprintf(out, ", %s", m.CPU)
	}
	fmt.Fprintln(out)
	if m.Revision != "" {
		fmt.Fprintf(out, "rumor revision: %s\n", m.Revision)
	}
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
	fmt.Fprintf(out, "form: %s; agents on 127.0.0.1 TCP+Noise in one process (figures 1 -n, 2-4, 6-11) or as rumor agent processes (figures 1 -proc-n, 5), heartbeat %v, payload %d B\n",
		mode, p.cluster.heartbeat, p.payload)
	if p.procs.gomaxprocs > 0 {
		fmt.Fprintf(out, "agent processes run with GOMAXPROCS=%d\n", p.procs.gomaxprocs)
	}
}

// printReport prints the figures as plain tables.
func printReport(out io.Writer, rep Report, p params) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw)
	what := "svc set"
	if p.namespace == "kv" {
		what = "kv put"
	}
	fmt.Fprintf(tw, "1. Propagation: %s (%d B) from a rotating writer every %v-%v, until applied on the last other agent (after 1 untimed write per agent)\n",
		what, p.payload, p.spacingMin, p.spacingMax)
	fmt.Fprintln(tw, "N\tupdates\tlost\tp50 ms\tp99 ms\tmax ms\tsamples\tformed in\tmin peers\tCPU bench/others\t")
	for _, r := range rep.Propagation {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%d\t%.1f s\t%d\t%.2f / %.2f of %d\t\n", r.Agents, r.Updates, r.Lost,
			benchstat.FmtMs(r.Latency.P50Ms), benchstat.FmtMs(r.Latency.P99Ms), benchstat.FmtMs(r.Latency.MaxMs), r.Latency.N, r.FormMs/1000, r.MinPeers,
			r.CPUCores, r.OtherCores, rep.Machine.NumCPU)
	}
	if len(rep.Propagation) == 0 {
		fmt.Fprintln(tw, "(not measured)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "1b. Propagation with rumor agent processes: as above, each agent a process; svc set through the writer's rpc.Client, applies read from every agent's watch stream;\n    latency includes the write RPC and the watch stream's unix-socket delivery (one clock: the bench's)\n")
	fmt.Fprintln(tw, "N\tupdates\tlost\tp50 ms\tp99 ms\tmax ms\tsamples\tformed in\tmin peers\tCPU bench/agents/others\t")
	for _, r := range rep.PropagationProcs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%d\t%.1f s\t%d\t%.2f / %.2f / %.2f of %d\t\n", r.Agents, r.Updates, r.Lost,
			benchstat.FmtMs(r.Latency.P50Ms), benchstat.FmtMs(r.Latency.P99Ms), benchstat.FmtMs(r.Latency.MaxMs), r.Latency.N, r.FormMs/1000, r.MinPeers,
			r.CPUCores, r.AgentCores, r.OtherCores, rep.Machine.NumCPU)
	}
	if len(rep.PropagationProcs) == 0 {
		fmt.Fprintln(tw, "(not measured)")
	}
	fmt.Fprintln(tw)
	printFloor(tw, rep, p)
	if t := rep.Throughput; t != nil {
		fmt.Fprintf(tw, "2. Throughput: N=%d (1 publisher, %d receivers), bl add (%d B reason), %d writer goroutines, window %d\n",
			t.Agents, t.Receivers, t.PayloadBytes, t.Writers, t.Window)
		fmt.Fprintf(tw, "written\t%d in %.2f s (%.0f/s offered)\t\n", t.Written, t.WriteSeconds, float64(t.Written)/t.WriteSeconds)
		fmt.Fprintf(tw, "slowest receiver\t%d applied, %d lost, in %.2f s\t\n", t.SlowestApplied, t.Lost, t.Seconds)
		fmt.Fprintf(tw, "updates/s\t%.0f (CPU: bench %.2f, other processes %.2f, of %d cores)\t\n", t.UpdatesPerSec, t.CPUCores, t.OtherCores, rep.Machine.NumCPU)
		fmt.Fprintf(tw, "latency under load\t%s, every %dth write, %d samples incomplete\t\n", t.Latency, t.SampleEvery, t.LatencyLost)
		fmt.Fprintln(tw)
		w := t.Wire
		fmt.Fprintf(tw, "3. Wire cost per receiver (libp2p bandwidth counters, all protocols, %.1f s window)\n", w.WindowSeconds)
		fmt.Fprintf(tw, "bytes in per receiver\t%s\t\n", benchstat.FmtBytes(w.BytesInPerReceiver))
		fmt.Fprintf(tw, "per update\t%.0f B (%.2fx the %d B payload)\t\n", w.PerUpdate, w.PerUpdate/float64(t.PayloadBytes), t.PayloadBytes)
		fmt.Fprintf(tw, "per update, net of idle\t%.0f B (%.2fx payload; idle background %.0f B/s per receiver)\t\n",
			w.NetPerUpdate, w.NetPerUpdate/float64(t.PayloadBytes), w.IdleBytesPerSec)
		if w.Messages > 0 {
			fmt.Fprintf(tw, "GossipSub messages\t%d first copies to %d receivers (%.1f updates each), %.2f duplicates per message\t\n",
				w.Messages, t.Receivers, float64(t.SlowestApplied)*float64(t.Receivers)/float64(w.Messages), w.DuplicatesPerMessage())
			fmt.Fprintf(tw, "GossipSub control\tIDONTWANT ids sent %d, IHAVE ids in %d, IWANT ids in %d\t\n", w.IDontWantSent, w.IHaveIn, w.IWantIn)
		}
		if len(w.ByProtocol) > 0 {
			protos := slices.Sorted(maps.Keys(w.ByProtocol))
			fmt.Fprint(tw, "per update by protocol\t")
			for i, p := range protos {
				if i > 0 {
					fmt.Fprint(tw, ", ")
				}
				name := p
				if name == "" {
					name = "(none)"
				}
				fmt.Fprintf(tw, "%s %.1f B", name, w.ByProtocol[p])
			}
			fmt.Fprintln(tw, "\t")
		}
	} else {
		fmt.Fprintln(tw, "2./3. Throughput and wire cost: (not measured)")
	}
	fmt.Fprintln(tw)
	if len(rep.Memory) > 0 {
		m0 := rep.Memory[0]
		fmt.Fprintf(tw, "4. Memory per key: %s with signed svc entries as received (wire-decoded, with their proofs), %d B value, %d B key;\n   heap in use after two GCs (HeapAlloc), after minus before filling, divided by the keys;\n   signed by 30 writers in batches of 256 (a busy publisher: one cert per batch, shared) or 1 (an idle one: a cert per key)\n",
			m0.Store, m0.PayloadBytes, m0.KeyBytes)
		fmt.Fprintln(tw, "keys\tper batch\theap before\theap after\tbytes/key\toverhead/key\tfill\t")
		for _, m := range rep.Memory {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.0f\t%.0f\t%.1f s\t\n", m.Keys, m.PerBatch, benchstat.FmtBytes(float64(m.HeapBefore)), benchstat.FmtBytes(float64(m.HeapAfter)),
				m.BytesPerKey, m.BytesPerKey-float64(m.PayloadBytes+m.KeyBytes), m.Seconds)
		}
	} else {
		fmt.Fprintln(tw, "4. Memory per key: (not measured)")
	}
	if r := rep.IdleRSS; r != nil {
		link := "dynamically linked"
		if r.Static {
			link = "statically linked"
		}
		fmt.Fprintf(tw, "   idle RSS of one agent process (default config, ephemeral ports; %s binary), after %.0f s: %s = %.1f MB (private %s, file-backed %s)\n",
			link, r.IdleSeconds, benchstat.FmtBytes(float64(r.VmRSS)), float64(r.VmRSS)/1e6,
			benchstat.FmtBytes(float64(r.RssAnon)), benchstat.FmtBytes(float64(r.RssFile)))
	}
	printFailureFigures(tw, rep, p)
	printIdle(tw, rep, p)
	printMemberCost(tw, rep)
	printLane(tw, rep, p)
	printQueue(tw, rep, p)
	fmt.Fprintf(tw, "\ntotal %.1f s", rep.Seconds)
	if rep.Machine.LoadEnd >= 0 {
		fmt.Fprintf(tw, ", load average at end %.2f", rep.Machine.LoadEnd)
	}
	fmt.Fprintf(tw, ", other processes used %.2f of %d cores meanwhile\n", rep.Machine.OtherCores, rep.Machine.NumCPU)
	for _, e := range rep.Errors {
		fmt.Fprintf(tw, "ERROR: %s\n", e)
	}
}
