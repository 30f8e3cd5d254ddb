package sim

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	_ "net/http/pprof" // -sim.scale.pprof
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/internal/cluster"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

// scaleN is the number of agents TestScale runs; 0 skips it (make
// sim-scale sets it).
var (
	scaleN    = flag.Int("sim.scale", 0, "run TestScale with this many agents (0: skip)")
	scaleIdle = flag.Duration("sim.scale.idle", 20*time.Second, "TestScale: the idle window over which per-node rates are measured (virtual time)")
	scaleSeed = flag.Uint64("sim.scale.seed", 1, "TestScale: seed of the cluster and of the random choices")
	scaleSkip = flag.String("sim.scale.skip", "", "TestScale: phases to skip, comma-separated: writes, kill, partition")
	// A CPU profile is -test.cpuprofile: started in the bubble, the
	// profiler's reader would block it for good (it waits for samples in
	// the runtime, which synctest does not count as durably blocked).
	scalePprof = flag.String("sim.scale.pprof", "", "TestScale: serve net/http/pprof on this address (e.g. 127.0.0.1:6060) while it runs")
	scaleProf  = flag.String("sim.scale.profile", "", "TestScale: write heap and goroutine profiles after the idle phase to <this>.heap and <this>.goroutine")
)

// The setting of TestScale: three regions, 5 ms one way within a region,
// 60 to 150 ms between regions, 0.5 % of packets lost.
var (
	scaleRegions = []string{"eu", "us", "ap"}
	scaleLatency = map[string]time.Duration{"eu-us": 60 * time.Millisecond, "us-ap": 110 * time.Millisecond, "eu-ap": 150 * time.Millisecond}
)

const (
	scaleBase     = 5 * time.Millisecond
	scaleLoss     = 0.005
	scaleWrites   = 50
	scaleWriteGap = 200 * time.Millisecond
	scaleVictims  = 10
	// scaleSettle is how long the cluster runs after it formed before
	// the idle window starts; scalePartition how long region ap is cut off.
	scaleSettle    = 15 * time.Second
	scalePartition = 20 * time.Second
	// scaleTarget is what a write should take to reach every agent, p99.
	scaleTarget = 400 * time.Millisecond
)

// TestScale measures a large simulated cluster (issue 17 item 5): cold
// start, detection of killed nodes, write propagation, a region's
// partition and heal, and the idle cost per node. It runs only when
// -sim.scale=N is given (make sim-scale), and prints a table.
func TestScale(t *testing.T) {
	if *scaleN == 0 {
		t.Skip("run with -sim.scale=N (make sim-scale)")
	}
	if *scaleN < 4*len(scaleRegions) {
		t.Fatalf("-sim.scale=%d: at least %d agents", *scaleN, 4*len(scaleRegions))
	}
	var r *scaleReport
	skip := map[string]bool{}
	for p := range strings.SplitSeq(*scaleSkip, ",") {
		switch p {
		case "":
		case "writes", "kill", "partition":
			skip[p] = true
		default:
			t.Fatalf("-sim.scale.skip: %q: want writes, kill or partition", p)
		}
	}
	if *scalePprof != "" {
		// Outside the bubble: the profiler's goroutines must not be in it.
		srv := &http.Server{Addr: *scalePprof, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		defer srv.Close()
	}
	cluster.Test(t, func(t *testing.T) { r = runScale(t, *scaleN, *scaleSeed, *scaleIdle, skip) })
	if r != nil {
		fmt.Print(r.table())
	}
}

// scaleReport is what one TestScale run measured; durations are virtual
// unless named wall.
type scaleReport struct {
	n                 int
	started, formed   time.Duration // last agent started; every agent sees every other alive (from the first start)
	idle              time.Duration
	idleRates         rates // per node per second, mean
	idleMax           rates // the busiest node
	writes            []time.Duration
	detect            []time.Duration
	split             time.Duration // every node sees the other side not alive
	healMembers       time.Duration // after heal: every live agent sees every live agent alive
	healStore         time.Duration // after heal: svc/ bl/ task/ kernel/ equal everywhere
	grantGap          time.Duration // between the two grants
	doubleLive        time.Duration // both claimants hold it, from the second grant
	doubleAfterHeal   time.Duration // of which after the heal
	oneHolderHeal     time.Duration // after heal: every agent names one holder
	partitionFor      time.Duration
	memBase, memAfter memSample
	peakRSS           uint64
	peersMean         float64
	peersMax          int
	keysIdle, keysEnd int     // store keys of one agent after the idle phase, at the end
	accusedKill       int     // accusations an agent stores after the kill phase
	accusedPartition  int     // accusations the partition added to an agent's store
	partitionMsgs     float64 // GossipSub messages delivered per agent from the cut until healed
	partitionCopies   float64 // the same with duplicates
	skipped           map[string]bool
	// falseAccusations and falseRefutations are the accusations written
	// and refuted by the time the idle window ends: none is true (no agent
	// is down yet).
	falseAccusations, falseRefutations uint64
	// unformedAt is the last time (from the start) a check during the
	// settling time and the idle window found an agent that did not see
	// every other alive; unformedPolls counts such checks (100 ms apart).
	unformedAt    time.Duration
	unformedPolls int
	// deadPolls counts the checks (100 ms apart, before any agent is
	// killed) on which some agent held a live agent dead.
	deadPolls  int
	wall       time.Duration
	wallPhases []string
}

// rates are per-node-per-second traffic figures.
type rates struct {
	probeMsgs, probeBytes     float64 // membership: probe requests and answers sent, their payload bytes in and out
	packetsOut, wireBytesOut  float64 // simulated network: UDP packets and bytes sent (all libp2p traffic)
	packetsIn, wireBytesIn    float64
	gossipDelivered, gossipIn float64 // GossipSub messages delivered, and all copies received (with duplicates)
	aeRounds                  float64 // anti-entropy exchanges completed
}

// memSample is the process's memory at one instant.
type memSample struct {
	rss, heapInuse, stackInuse, sys uint64
	goroutines                      int
}

func sampleMem() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procStatus("VmRSS")
	return memSample{rss: rss, heapInuse: ms.HeapInuse, stackInuse: ms.StackInuse, sys: ms.Sys, goroutines: runtime.NumGoroutine()}
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(field string) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// nodeCounters is one node's counters at one instant. (libp2p's own
// bandwidth counters are no use here: their meters are swept once a
// second of real time, not virtual.)
type nodeCounters struct {
	mon                           membership.Counters
	wire                          cluster.TrafficStats
	gossipDelivered, gossipCopies uint64
	aeRounds                      uint64
}

func countersOf(n *cluster.Node) nodeCounters {
	a := n.Agent()
	tr := a.Gossip().Traffic()
	st, _ := a.Status(context.Background())
	return nodeCounters{
		mon: a.Monitor().Counters(), wire: n.Traffic(),
		gossipDelivered: tr.Delivered, gossipCopies: tr.Delivered + tr.Duplicates + tr.Rejected,
		aeRounds: st.AntiEntropy.Rounds,
	}
}

// ratesOf turns two nodes' counters over secs seconds into rates.
func ratesOf(a, b nodeCounters, secs float64) rates {
	m := func(x, y uint64) float64 { return float64(y-x) / secs }
	sent := func(c membership.Counters) uint64 {
		return c.ProbesSent + c.PingReqsSent + c.ProbesReceived + c.PingReqsReceived // requests and answers
	}
	w := b.wire.Sub(a.wire)
	return rates{
		probeMsgs:       m(sent(a.mon), sent(b.mon)),
		probeBytes:      m(a.mon.BytesSent+a.mon.BytesReceived, b.mon.BytesSent+b.mon.BytesReceived),
		packetsOut:      float64(w.PacketsOut) / secs,
		wireBytesOut:    float64(w.BytesOut) / secs,
		packetsIn:       float64(w.PacketsIn) / secs,
		wireBytesIn:     float64(w.BytesIn) / secs,
		gossipDelivered: m(a.gossipDelivered, b.gossipDelivered),
		gossipIn:        m(a.gossipCopies, b.gossipCopies),
		aeRounds:        m(a.aeRounds, b.aeRounds),
	}
}

// sweep checks a predicate on every node, resuming where it last failed
// (so a check that fails early costs little); once it has passed on every
// node it checks them all once more, and reports success only then.
type sweep struct{ next int }

func (s *sweep) done(nodes []*cluster.Node, pred func(*cluster.Node) bool) bool {
	for ; s.next < len(nodes); s.next++ {
		if !pred(nodes[s.next]) {
			return false
		}
	}
	for i, n := range nodes {
		if !pred(n) {
			s.next = i
			return false
		}
	}
	return true
}

// await polls cond every `every` until it holds, and fails the test if it
// has not within timeout; it returns how long it took.
func await(t testing.TB, what string, timeout, every time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("scale: %s: not within %v", what, timeout)
		}
		time.Sleep(every)
	}
	return time.Since(start)
}

// seesAlive reports whether n's failure detector holds every node of
// others (but n) alive.
func seesAlive(n *cluster.Node, others []*cluster.Node) bool {
	tab := n.Agent().Monitor().Table()
	for _, o := range others {
		if o != n && tab.State(o.ID()) != membership.Alive {
			return false
		}
	}
	return true
}

// scaleRun is one TestScale run under way.
type scaleRun struct {
	t         *testing.T
	r         *scaleReport
	c         *cluster.Cluster
	rng       *rand.Rand
	virtual0  time.Time // virtual
	wallStart time.Time
	// formedFrom is when the agents started (virtual).
	formedFrom time.Time
}

// phase logs the end of a phase that started (on the wall clock) at
// since.
func (s *scaleRun) phase(name string, since time.Time) {
	s.r.wallPhases = append(s.r.wallPhases, fmt.Sprintf("%s %v", name, wallClock().Sub(since).Round(time.Second)))
	s.t.Logf("scale: %s done: virtual %v, wall %v; %s", name, time.Since(s.virtual0).Round(time.Millisecond),
		wallClock().Sub(s.wallStart).Round(time.Second), memLine(sampleMem(), s.r.n))
}

// accusations counts the accusations (node/<target>/<accuser>) in n's store.
func accusations(n *cluster.Node) int {
	k := 0
	for _, e := range n.Agent().Store().List("node/") {
		if !crdt.IsMemberKey(e.Key) {
			k++
		}
	}
	return k
}

// delivered sums the GossipSub messages the live agents took so far.
func delivered(c *cluster.Cluster) (first, copies uint64) {
	for _, x := range c.Live() {
		tr := x.Agent().Gossip().Traffic()
		first += tr.Delivered
		copies += tr.Delivered + tr.Duplicates + tr.Rejected
	}
	return first, copies
}

func runScale(t *testing.T, n int, seed uint64, idle time.Duration, skip map[string]bool) *scaleReport {
	s := &scaleRun{t: t, r: &scaleReport{n: n, skipped: skip}, rng: rand.New(rand.NewPCG(seed, 0x5ca1e)), virtual0: time.Now(), wallStart: wallClock()}
	s.r.memBase = sampleMem()
	s.coldStart(seed)
	s.idle(idle)
	if !skip["writes"] {
		w := wallClock()
		s.r.writes = propagate(t, s.c, s.rng, "w", scaleWrites)
		s.phase("writes", w)
	}
	if !skip["kill"] {
		s.kill()
	}
	if !skip["partition"] {
		s.partition()
	}
	s.r.peakRSS, _ = procStatus("VmHWM")
	s.r.wall = wallClock().Sub(s.wallStart)
	return s.r
}

// coldStart is (a): every agent starts at the same virtual instant,
// joining through n1 (as agents that name one seed do), and the cluster
// forms.
func (s *scaleRun) coldStart(seed uint64) {
	w := wallClock()
	start := time.Now()
	s.formedFrom = start
	s.c = cluster.New(s.t, cluster.Options{
		N: s.r.n, Seed: seed, Regions: scaleRegions, Latency: scaleBase,
		RegionLatency: scaleLatency, Loss: scaleLoss, NoWait: true,
	})
	s.r.started = time.Since(start)
	var formed sweep
	next := start
	await(s.t, "cold start", 10*time.Minute, 50*time.Millisecond, func() bool {
		if time.Since(next) >= 0 {
			next = next.Add(time.Second)
			s.progress("forming")
		}
		return formed.done(s.c.Nodes(), func(x *cluster.Node) bool {
			return x.Agent().Monitor().Table().Count()[membership.Alive] == s.r.n-1
		})
	})
	s.r.formed = time.Since(start)
	s.phase("cold start", w)
}

// progress logs the cluster's state: how many agents see every other
// alive, the suspicions, accusations and refutations so far, traffic.
func (s *scaleRun) progress(what string) membership.Counters {
	var full, minAlive, conns, suspect, dead int
	minAlive = s.r.n
	var ae uint64
	var mc membership.Counters
	for _, x := range s.c.Live() {
		a := x.Agent()
		cnt := a.Monitor().Table().Count()
		if cnt[membership.Alive] == s.r.n-1 {
			full++
		}
		minAlive = min(minAlive, cnt[membership.Alive])
		suspect += cnt[membership.Suspect]
		dead += cnt[membership.Dead]
		conns += len(a.Gossip().Peers())
		st, _ := a.Status(context.Background())
		ae += st.AntiEntropy.Rounds
		c := a.Monitor().Counters()
		mc.Accusations += c.Accusations
		mc.Refutations += c.Refutations
		mc.ClosedLinks += c.ClosedLinks
		mc.PingReqsSent += c.PingReqsSent
	}
	msgs, copies := delivered(s.c)
	pk, b, drop := s.c.Network().Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procStatus("VmRSS")
	s.t.Logf("scale: %s at %v (wall %v): %d agents see all alive, the fewest %d; views suspect %d, dead %d; accusations %d, refutations %d, links closed %d, ping-reqs %d; %.1f peers each; gossip %d delivered, %d with duplicates; %d anti-entropy rounds; %d packets, %d MB, %d lost; RSS %d MB, heap %d MB",
		what, time.Since(s.virtual0).Round(time.Millisecond), wallClock().Sub(s.wallStart).Round(time.Second), full, minAlive,
		suspect, dead, mc.Accusations, mc.Refutations, mc.ClosedLinks, mc.PingReqsSent,
		float64(conns)/float64(s.r.n), msgs, copies, ae, pk, b>>20, drop, rss>>20, ms.HeapInuse>>20)
	return mc
}

// sleep sleeps d, logging progress every 5 s, and checks every 100 ms
// that every agent still sees every other alive (no false suspicion),
// recording when it last did not.
func (s *scaleRun) sleep(d time.Duration, what string) {
	log := time.Now().Add(5 * time.Second)
	var formed sweep
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(min(100*time.Millisecond, time.Until(end)))
		if !formed.done(s.c.Nodes(), func(x *cluster.Node) bool {
			return x.Agent().Monitor().Table().Count()[membership.Alive] == s.r.n-1
		}) {
			s.r.unformedAt = time.Since(s.formedFrom)
			s.r.unformedPolls++
			for _, x := range s.c.Nodes() {
				if x.Agent().Monitor().Table().Count()[membership.Dead] > 0 {
					s.r.deadPolls++
					break
				}
			}
		}
		if !time.Now().Before(log) {
			log = log.Add(5 * time.Second)
			s.progress(what)
		}
	}
}

// idle is (e): after a settling time (dials beyond max_peers let go,
// first anti-entropy rounds), every agent's counters over the window.
func (s *scaleRun) idle(window time.Duration) {
	w := wallClock()
	s.sleep(scaleSettle, "settling")
	nodes := s.c.Nodes()
	before := make([]nodeCounters, len(nodes))
	for i, x := range nodes {
		before[i] = countersOf(x)
	}
	s.sleep(window, "idle")
	r := s.r
	r.idle = window
	mc := s.progress("idle end")
	r.falseAccusations, r.falseRefutations = mc.Accusations, mc.Refutations
	var sum rates
	for i, x := range nodes {
		rt := ratesOf(before[i], countersOf(x), window.Seconds())
		sum = addRates(sum, rt, 1)
		r.idleMax = maxRates(r.idleMax, rt)
		p := len(x.Agent().Gossip().Peers())
		r.peersMean += float64(p) / float64(len(nodes))
		r.peersMax = max(r.peersMax, p)
	}
	r.idleRates = addRates(rates{}, sum, 1/float64(len(nodes)))
	r.keysIdle = nodes[0].Agent().Store().Len()
	r.memAfter = sampleMem()
	if *scaleProf != "" {
		writeProfiles(s.t, *scaleProf)
	}
	s.phase("idle", w)
}

// kill is (b): scaleVictims random agents killed at once; how long until
// every survivor holds each of them dead.
func (s *scaleRun) kill() {
	w := wallClock()
	victims := pick(s.rng, s.c.Live(), scaleVictims)
	killed := make(map[*cluster.Node]time.Time)
	for _, v := range victims {
		killed[v] = time.Now()
		s.c.Kill(v)
	}
	survivors := s.c.Live()
	detected := make(map[*cluster.Node]time.Duration)
	await(s.t, "detection", 2*time.Minute, cluster.PollEvery, func() bool {
		for _, v := range victims {
			if _, ok := detected[v]; ok {
				continue
			}
			all := true
			for _, x := range survivors {
				if x.Agent().Monitor().Table().State(v.ID()) != membership.Dead {
					all = false
					break
				}
			}
			if all {
				detected[v] = time.Since(killed[v])
			}
		}
		return len(detected) == len(victims)
	})
	for _, v := range victims {
		s.r.detect = append(s.r.detect, detected[v])
	}
	s.r.accusedKill = accusations(survivors[0])
	s.phase("kill", w)
}

// partition is (d): region ap cut off from the rest for scalePartition;
// writes on both sides and one kernel claimed on each; then the heal,
// and how long until the cluster is one again.
func (s *scaleRun) partition() {
	t, r, c := s.t, s.r, s.c
	w := wallClock()
	var apAll, restAll, ap, rest []*cluster.Node
	for _, x := range c.Nodes() {
		live := x.Agent() != nil
		if x.Region == "ap" {
			apAll = append(apAll, x)
			if live {
				ap = append(ap, x)
			}
		} else {
			restAll = append(restAll, x)
			if live {
				rest = append(rest, x)
			}
		}
	}
	accused0 := accusations(rest[0])
	msgs0, copies0 := delivered(c)
	c.Partition(apAll, restAll)
	cut := time.Now()
	notAlive := func(x *cluster.Node, others []*cluster.Node) bool {
		tab := x.Agent().Monitor().Table()
		for _, o := range others {
			if tab.State(o.ID()) == membership.Alive {
				return false
			}
		}
		return true
	}
	var split sweep
	r.split = await(t, "partition seen", 2*time.Minute, 100*time.Millisecond, func() bool {
		return split.done(c.Live(), func(x *cluster.Node) bool {
			if x.Region == "ap" {
				return notAlive(x, rest)
			}
			return notAlive(x, ap)
		})
	})
	ctx := context.Background()
	for i, x := range append(pick(s.rng, ap, 5), pick(s.rng, rest, 5)...) {
		if _, err := x.Agent().ServiceSet(ctx, "scale", fmt.Sprintf("p%d", i), rpc.ServiceSet{Status: "up"}); err != nil {
			t.Fatalf("scale: write in the partition: %v", err)
		}
	}
	claimants := []*cluster.Node{pick(s.rng, ap, 1)[0], pick(s.rng, rest, 1)[0]}
	granted := make(chan time.Time, len(claimants))
	for _, x := range claimants {
		go func() {
			res, err := x.Agent().KernelClaim(ctx, "scale", rpc.KernelClaim{Keep: true, TTLMillis: 120_000})
			if err != nil || !res.Granted {
				t.Errorf("scale: %s claims in the partition: granted %v, err %v", x.Name(), res.Granted, err)
			}
			granted <- time.Now()
		}()
	}
	g1, g2 := <-granted, <-granted
	r.grantGap = g2.Sub(g1)
	r.partitionFor = scalePartition
	s.progress("partitioned")
	for time.Now().Before(cut.Add(scalePartition)) {
		time.Sleep(min(5*time.Second, time.Until(cut.Add(scalePartition))))
		s.progress("partitioned")
	}
	c.Heal()
	healed := time.Now()
	holds := func(x *cluster.Node) bool {
		k, err := x.Agent().KernelGet(ctx, "scale")
		return err == nil && k.Holder == x.ID() && k.Live
	}
	live := c.Live()
	var members sweep
	var doneMembers, doneStore, doneDouble, doneOne bool
	log := healed.Add(5 * time.Second)
	await(t, "heal", 5*time.Minute, cluster.PollEvery, func() bool {
		now := time.Now()
		if !now.Before(log) {
			log = log.Add(5 * time.Second)
			s.progress("healing")
		}
		if !doneDouble && !(holds(claimants[0]) && holds(claimants[1])) {
			doneDouble = true
			r.doubleLive, r.doubleAfterHeal = now.Sub(g2), now.Sub(healed)
		}
		if !doneOne {
			holders := map[string]bool{}
			for _, x := range live {
				k, _ := x.Agent().KernelGet(ctx, "scale")
				holders[k.Holder+" "+strconv.FormatBool(k.Live)] = true
			}
			if len(holders) == 1 {
				doneOne = true
				r.oneHolderHeal = now.Sub(healed)
			}
		}
		if !doneMembers && members.done(live, func(x *cluster.Node) bool { return seesAlive(x, live) }) {
			doneMembers = true
			r.healMembers = now.Sub(healed)
		}
		if !doneStore && storeConverged(live) {
			doneStore = true
			r.healStore = now.Sub(healed)
		}
		return doneMembers && doneStore && doneDouble && doneOne
	})
	r.accusedPartition = accusations(rest[0]) - accused0
	msgs, copies := delivered(c)
	r.partitionMsgs = float64(msgs-msgs0) / float64(len(live))
	r.partitionCopies = float64(copies-copies0) / float64(len(live))
	r.keysEnd = live[0].Agent().Store().Len()
	s.phase("partition", w)
}

// propagate makes count svc writes from random live agents, gap apart,
// and returns how long each took to reach every live agent.
func propagate(t *testing.T, c *cluster.Cluster, rng *rand.Rand, prefix string, count int) []time.Duration {
	live := c.Live()
	type pending struct {
		key     string
		at      time.Time
		missing []*cluster.Node
	}
	var open []*pending
	var out []time.Duration
	next := time.Now()
	ctx := context.Background()
	for k := 0; len(out) < count; {
		now := time.Now()
		if k < count && !now.Before(next) {
			x := live[rng.IntN(len(live))]
			inst := fmt.Sprintf("%s%d", prefix, k)
			at := time.Now()
			if _, err := x.Agent().ServiceSet(ctx, "scale", inst, rpc.ServiceSet{Status: "up"}); err != nil {
				t.Fatalf("scale: write %s on %s: %v", inst, x.Name(), err)
			}
			open = append(open, &pending{key: crdt.ServiceKey("scale", inst), at: at, missing: slices.Clone(live)})
			k++
			next = next.Add(scaleWriteGap)
		}
		for _, p := range open {
			p.missing = slices.DeleteFunc(p.missing, func(x *cluster.Node) bool {
				_, ok := x.Agent().Store().Get(p.key)
				return ok
			})
			if len(p.missing) == 0 {
				out = append(out, time.Since(p.at))
			}
		}
		open = slices.DeleteFunc(open, func(p *pending) bool { return len(p.missing) == 0 })
		for _, p := range open {
			if time.Since(p.at) > time.Minute {
				t.Fatalf("scale: write %s reached %d of %d agents in a minute", p.key, len(live)-len(p.missing), len(live))
			}
		}
		time.Sleep(cluster.PollEvery)
	}
	return out
}

// pick returns k distinct random nodes of from.
func pick(rng *rand.Rand, from []*cluster.Node, k int) []*cluster.Node {
	idx := rng.Perm(len(from))[:k]
	out := make([]*cluster.Node, k)
	for i, j := range idx {
		out[i] = from[j]
	}
	return out
}

// storeConverged reports whether every live agent holds the same svc/,
// bl/, task/ and kernel/ entries.
func storeConverged(live []*cluster.Node) bool {
	ref := live[0].Agent().Store()
	for _, prefix := range []string{"svc/", "bl/", "task/", "kernel/"} {
		want := ref.List(prefix)
		for _, x := range live[1:] {
			got := x.Agent().Store().List(prefix)
			if len(got) != len(want) {
				return false
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					return false
				}
			}
		}
	}
	return true
}

func addRates(a, b rates, f float64) rates {
	return rates{
		a.probeMsgs + f*b.probeMsgs, a.probeBytes + f*b.probeBytes,
		a.packetsOut + f*b.packetsOut, a.wireBytesOut + f*b.wireBytesOut, a.packetsIn + f*b.packetsIn, a.wireBytesIn + f*b.wireBytesIn,
		a.gossipDelivered + f*b.gossipDelivered, a.gossipIn + f*b.gossipIn, a.aeRounds + f*b.aeRounds,
	}
}

func maxRates(a, b rates) rates {
	return rates{
		max(a.probeMsgs, b.probeMsgs), max(a.probeBytes, b.probeBytes),
		max(a.packetsOut, b.packetsOut), max(a.wireBytesOut, b.wireBytesOut), max(a.packetsIn, b.packetsIn), max(a.wireBytesIn, b.wireBytesIn),
		max(a.gossipDelivered, b.gossipDelivered), max(a.gossipIn, b.gossipIn), max(a.aeRounds, b.aeRounds),
	}
}

// quantile returns the p-quantile of ds (nearest rank).
func quantile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s)) + 0.999999)
	return s[min(max(i-1, 0), len(s)-1)]
}

func memLine(m memSample, n int) string {
	return fmt.Sprintf("RSS %d MB, heap in use %d MB, %d goroutines (%.2f MB RSS per agent)", m.rss>>20, m.heapInuse>>20, m.goroutines, float64(m.rss)/float64(n)/(1<<20))
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// table prints the report as Markdown.
func (r *scaleReport) table() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("")
	p("scale: %d agents in 3 regions (eu, us, ap), %v one way within a region, eu-us %v, us-ap %v, eu-ap %v, %.1f%% packet loss; virtual time",
		r.n, scaleBase, scaleLatency["eu-us"], scaleLatency["us-ap"], scaleLatency["eu-ap"], 100*scaleLoss)
	p("")
	p("| measure | result |")
	p("|---|---|")
	p("| (a) cold start: every agent sees every other alive | %s after all started (at one virtual instant; the last at +%s) |", ms(r.formed), ms(r.started))
	if r.unformedPolls > 0 {
		p("| (a) ... and stays so (false suspicions after it formed: not all alive on %d checks 100 ms apart) | from %s |", r.unformedPolls, ms(r.unformedAt+100*time.Millisecond))
	} else {
		p("| (a) ... and stays so (checked every 100 ms through the settling time and the idle window) | yes |")
	}
	p("| (a) false dead: checks (of the same) on which some agent held a live agent dead | %d |", r.deadPolls)
	if r.skipped["kill"] {
		p("| (b) detection of %d killed agents | skipped |", scaleVictims)
	} else {
		p("| (b) detection of %d agents killed at once: every survivor holds it dead | p50 %s, p99 %s (max %s) |", len(r.detect), ms(quantile(r.detect, .5)), ms(quantile(r.detect, .99)), ms(quantile(r.detect, 1)))
	}
	if r.skipped["writes"] {
		p("| (c) write propagation | skipped |")
	} else {
		verdict := "meets"
		if quantile(r.writes, .99) > scaleTarget {
			verdict = "misses"
		}
		p("| (c) %d svc writes from random agents, %v apart: until every agent holds it | p50 %s, p99 %s (max %s): %s the target p99 <= %v |", len(r.writes), scaleWriteGap, ms(quantile(r.writes, .5)), ms(quantile(r.writes, .99)), ms(quantile(r.writes, 1)), verdict, scaleTarget)
	}
	if r.skipped["partition"] {
		p("| (d) partition of region ap and heal | skipped |")
	} else {
		p("| (d) region ap cut off for %v: every agent sees the other side not alive | %s after the cut |", r.partitionFor, ms(r.split))
		p("| (d) after the heal: every live agent sees every live agent alive | %s |", ms(r.healMembers))
		p("| (d) after the heal: svc/ bl/ task/ kernel/ equal on every agent | %s |", ms(r.healStore))
		p("| (d) one kernel claimed on each side (grants %s apart): both claimants live holders | %s from the second grant, %s of it after the heal |", ms(r.grantGap), ms(r.doubleLive), ms(r.doubleAfterHeal))
		p("| (d) after the heal: every agent names one holder | %s |", ms(r.oneHolderHeal))
		p("| (d) accusations the partition added to each store; GossipSub messages per agent, cut to converged | %d; %.0f delivered, %.0f received with duplicates |", r.accusedPartition, r.partitionMsgs, r.partitionCopies)
	}
	i, x := r.idleRates, r.idleMax
	p("| (e) idle, per agent per second, over %v (mean / busiest agent) | |", r.idle)
	p("| membership: probe messages sent (requests + answers) | %.2f / %.2f |", i.probeMsgs, x.probeMsgs)
	p("| membership: probe payload bytes (in + out) | %.0f / %.0f B |", i.probeBytes, x.probeBytes)
	p("| GossipSub messages delivered / received with duplicates | %.2f / %.2f |", i.gossipDelivered, i.gossipIn)
	p("| anti-entropy exchanges completed | %.2f / %.2f |", i.aeRounds, x.aeRounds)
	p("| total (all libp2p traffic, QUIC): UDP packets sent / received | %.1f / %.1f (busiest %.1f / %.1f) |", i.packetsOut, i.packetsIn, x.packetsOut, x.packetsIn)
	p("| total: UDP payload bytes sent / received | %.0f / %.0f B (busiest %.0f / %.0f) |", i.wireBytesOut, i.wireBytesIn, x.wireBytesOut, x.wireBytesIn)
	p("| connected peers per agent | mean %.1f, max %d |", r.peersMean, r.peersMax)
	p("| false accusations (and refutations) from the cold start to the end of the idle window | %d (%d) |", r.falseAccusations, r.falseRefutations)
	keys := fmt.Sprintf("%d after idle", r.keysIdle)
	if !r.skipped["kill"] {
		keys += fmt.Sprintf("; %d accusations after the kills", r.accusedKill)
	}
	if r.keysEnd > 0 {
		keys += fmt.Sprintf("; %d at the end", r.keysEnd)
	}
	p("| store keys per agent | %s |", keys)
	m := r.memAfter
	per := func(v uint64) float64 { return float64(v) / float64(r.n) / (1 << 20) }
	p("| memory after formation + idle | RSS %d MB = %.1f MB per agent (%.1f above the %d MB before); per agent: Go heap in use %.1f MB, goroutine stacks %.1f MB (%d goroutines) |",
		m.rss>>20, per(m.rss), per(m.rss-min(m.rss, r.memBase.rss)), r.memBase.rss>>20, per(m.heapInuse), per(m.stackInuse), m.goroutines/r.n)
	p("| peak RSS | %d MB = %.1f MB per agent |", r.peakRSS>>20, per(r.peakRSS))
	p("| wall time | %v (%s) |", r.wall.Round(time.Second), strings.Join(r.wallPhases, ", "))
	return b.String()
}

// writeProfiles writes the heap and goroutine profiles to path.heap and
// path.goroutine.
func writeProfiles(t testing.TB, path string) {
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(path + "." + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// wallClock reads the real time: in a synctest bubble time.Now is
// virtual.
func wallClock() time.Time {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		return time.Time{}
	}
	return time.Unix(tv.Unix())
}
