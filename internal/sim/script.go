package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/internal/cluster"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
)

// Script runs a scenario file: a datadriven file (the format of
// cockroachdb/datadriven, as etcd-io/raft's tests use) whose directives act
// on one cluster and whose expected outputs are what every agent must show.
//
// Set-up (first directive):
//
//	cluster n=50 [real-n=10] [seed=S] [regions=(eu,us,ap)]
//	        [latency=(eu-us:40ms,eu-ap:120ms,us-ap:90ms)] [base=1ms] [loss=0.01]
//	        [<config key>=<value> ...]   e.g. lease_ttl=3s max_skew=500ms
//
// Writes, made through one agent's API (their output is "ok", the result,
// or the error):
//
//	svc-set n1 web/w1 [status=up] [addr=A] | svc-delete n1 web/w1
//	bl-add n2 fraud/u1 [ttl=5s] | bl-remove n2 fraud/u1
//	task-assign n1 job7 [to=n3] | task-update n3 job7 state=running | task-cancel n5 job7
//	claim n3 k1 [ttl=3s] [job=J] | renew n3 k1 | release n3 k1
//	claim-race k1 nodes=(n1,n2,n3) [ttl=3s]   concurrent claims; how many won
//	claim-rounds k1 rounds=50                  every live node claims at once,
//	        each round: one grant, every agent names the winner, who releases
//	churn writes=40 [seed=S]    every live node makes random conflicting
//	        bl adds and removes, svc sets and task assignments at once
//	bulk n1 list=l keys=10000   one node adds many blacklist entries
//	deaf n3|all on|off          ignore gossip (learn by anti-entropy)
//
// Kernel sessions, as rumor lock holds a lease (keepalives every ttl/3):
//
//	session s1 n1 k1 [ttl=3s] [wait=10s]   "granted epoch=N", "waiting", "denied: ..."
//	session-event s1 [within=5s]           its next event but renewals, or "none"
//	end s1                                 its client goes away
//
// Faults:
//
//	partition n1,n2 | n3,n4 | region:eu | rest    heal
//	loss p=0.05      latency eu-us=80ms      skew n3 +500ms
//	kill n3          restart n3              wait 5s
//
// An adversary, a member that runs no agent but speaks the protocol with
// its own key:
//
//	adversary m
//	forge m as=n1 key=svc/web/w1 op=put status=down [via=gossip|ae|key]
//	      (op: put, delete, claim, renew, release, task state=S)
//	capture m n1 svc/web/w1      keep n1's signed write of the key
//	replay m [via=gossip|ae|key] send every captured write again
//	(key: the key exchange a kernel claimant runs with its peers)
//
// Observations: each prints what every live agent shows, as
// "all: <what>" when all agree and one line per group otherwise, and is
// retried until it prints the expected output or within (default 5s)
// passes:
//
//	converged [within=2s]        svc/, bl/, task/ and kernel/ equal everywhere
//	holder k1 [same]             "n3 epoch=1 live", or "none"; with same,
//	                             "one holder, live" if all name the same
//	svc web/w1 | bl fraud/u1 | task job7 | member n3
//	queue k1                     the nodes of k1's waiters, first first, or "empty"
//	refused path=gossip reason=forged-writer   "counted" on every agent?
//
// In real mode (real TCP, n = real-n) latency and loss do nothing: the
// loopback has neither.
type Script struct {
	t    testing.TB
	real bool
	c    *cluster.Cluster
	advs map[string]*adversary
	// sessions are the kernel sessions the scenario opened, by name.
	sessions map[string]*simSession
	// Report collects what the scenario measured.
	Report *Report
	// MaxAgents, if not 0, skips scenarios of more agents (the race
	// detector makes a 50-agent cluster too slow for make test).
	MaxAgents int
}

// Report is what one scenario measured.
type Report struct {
	// Agents is how many agents the cluster had.
	Agents int
	// Waits are how long the observations took to hold, in file order;
	// Lines are their directives' line numbers.
	Waits []time.Duration
	Lines []string
	// Packets, Bytes and Dropped count the simulated network's traffic
	// (zero on real TCP).
	Packets, Bytes, Dropped uint64
}

// Finish records the network's counters in the report.
func (s *Script) Finish() {
	if s.c != nil && s.c.Network() != nil {
		s.Report.Packets, s.Report.Bytes, s.Report.Dropped = s.c.Network().Stats()
	}
}

// NewScript prepares a scenario run; real runs it on real TCP.
func NewScript(t testing.TB, real bool) *Script {
	s := &Script{t: t, real: real, advs: make(map[string]*adversary), sessions: make(map[string]*simSession), Report: &Report{}}
	t.Cleanup(s.endSessions)
	return s
}

// Run is the datadriven handler: it runs one directive and returns its
// output.
func (s *Script) Run(t *testing.T, d *datadriven.TestData) string {
	s.t = t
	if d.Cmd != "cluster" && s.c == nil {
		d.Fatalf(t, "the first directive must be cluster")
	}
	switch d.Cmd {
	case "cluster":
		return s.cluster(d)
	case "svc-set", "svc-delete", "bl-add", "bl-remove", "task-assign", "task-update", "task-cancel", "claim", "renew", "release", "kv-put", "kv-delete":
		return s.write(d)
	case "kv-history":
		return s.kvHistory(d)
	case "session":
		return s.session(d)
	case "session-event":
		return s.sessionNext(d)
	case "end":
		return s.endSession(d)
	case "claim-race":
		return s.claimRace(d)
	case "claim-rounds":
		return s.claimRounds(d)
	case "churn":
		return s.churn(d)
	case "bulk":
		return s.bulk(d)
	case "deaf":
		nodes := s.c.Nodes()
		if s.arg(d, 0) != "all" {
			nodes = []*cluster.Node{s.node(d, 0)}
		}
		for _, n := range nodes {
			n.SetDeaf(s.arg(d, 1) == "on")
		}
		return "ok"
	case "partition":
		return s.partition(d)
	case "heal":
		s.c.Heal()
		return "ok"
	case "loss":
		var p float64
		d.ScanArgs(t, "p", &p)
		if s.c.Network() != nil {
			s.c.Network().SetLoss(p)
		}
		return "ok"
	case "latency":
		for _, a := range d.CmdArgs {
			ra, rb, ok := strings.Cut(a.Key, "-")
			dur, err := time.ParseDuration(a.SingleVal(t))
			if !ok || err != nil {
				d.Fatalf(t, "latency: want <region>-<region>=<duration>, got %s", a)
			}
			if s.c.Network() != nil {
				s.c.Network().SetLatency(ra, rb, dur)
			}
		}
		return "ok"
	case "skew":
		n, off := s.node(d, 0), s.arg(d, 1)
		dur, err := time.ParseDuration(off)
		if err != nil {
			d.Fatalf(t, "skew: %v", err)
		}
		n.SetSkew(dur)
		return "ok"
	case "kill":
		s.c.Kill(s.node(d, 0))
		return "ok"
	case "restart":
		s.c.Restart(s.node(d, 0))
		return "ok"
	case "wait":
		dur, err := time.ParseDuration(s.arg(d, 0))
		if err != nil {
			d.Fatalf(t, "wait: %v", err)
		}
		time.Sleep(dur)
		return "ok"
	case "adversary":
		name := s.arg(d, 0)
		s.advs[name] = &adversary{Adversary: s.c.NewAdversary(len(s.advs))}
		return "ok"
	case "forge":
		return s.forge(d)
	case "capture":
		a := s.adversary(d)
		n := s.node(d, 1)
		key := s.arg(d, 2)
		e, ok := n.Agent().Store().Get(key)
		if !ok || e.Winner().Proof.Cert == nil {
			d.Fatalf(t, "capture: %s holds no signed write of %s", n.Name(), key)
		}
		a.captured = append(a.captured, e.Winner())
		return "ok"
	case "replay":
		a := s.adversary(d)
		if len(a.captured) == 0 {
			d.Fatalf(t, "replay: nothing captured")
		}
		return s.send(d, a, a.captured)
	case "converged", "holder", "svc", "bl", "task", "member", "refused", "queue", "kv":
		return s.observe(d)
	}
	d.Fatalf(t, "unknown directive %q", d.Cmd)
	return ""
}

// arg returns the i-th argument's key (a positional argument).
func (s *Script) arg(d *datadriven.TestData, i int) string {
	if i >= len(d.CmdArgs) {
		d.Fatalf(s.t, "%s: argument %d missing", d.Cmd, i+1)
	}
	return d.CmdArgs[i].Key
}

// val returns the value of key=value, or def.
func (s *Script) val(d *datadriven.TestData, key, def string) string {
	if a, ok := d.Arg(key); ok {
		return a.SingleVal(s.t)
	}
	return def
}

// dur returns the duration value of key=value, or def.
func (s *Script) dur(d *datadriven.TestData, key string, def time.Duration) time.Duration {
	v := s.val(d, key, "")
	if v == "" {
		return def
	}
	x, err := time.ParseDuration(v)
	if err != nil {
		d.Fatalf(s.t, "%s: %s: %v", d.Cmd, key, err)
	}
	return x
}

// node returns the node named by the i-th argument; it must run.
func (s *Script) node(d *datadriven.TestData, i int) *cluster.Node {
	n := s.c.Node(s.arg(d, i))
	if n == nil {
		d.Fatalf(s.t, "%s: no node %q (the cluster has %d)", d.Cmd, s.arg(d, i), len(s.c.Nodes()))
	}
	return n
}

// agentOf returns the running agent of the i-th argument's node.
func (s *Script) agentOf(d *datadriven.TestData, i int) *cluster.Node {
	n := s.node(d, i)
	if n.Agent() == nil {
		d.Fatalf(s.t, "%s: %s is killed", d.Cmd, n.Name())
	}
	return n
}

// adversary is an adversary of the script, and the signed writes it
// captured to replay.
type adversary struct {
	*cluster.Adversary
	captured []crdt.Delta
}

func (s *Script) adversary(d *datadriven.TestData) *adversary {
	a := s.advs[s.arg(d, 0)]
	if a == nil {
		d.Fatalf(s.t, "%s: no adversary %q", d.Cmd, s.arg(d, 0))
	}
	return a
}

// cluster starts the cluster.
func (s *Script) cluster(d *datadriven.TestData) string {
	if s.c != nil {
		d.Fatalf(s.t, "cluster: already started")
	}
	opts := cluster.Options{Seed: 1, Real: s.real}
	var yaml strings.Builder
	var latencies []string
	loss := 0.0
	for _, a := range d.CmdArgs {
		v := func() string { return a.SingleVal(s.t) }
		var err error
		switch a.Key {
		case "n":
			if !s.real {
				opts.N, err = strconv.Atoi(v())
			}
		case "real-n":
			if s.real {
				opts.N, err = strconv.Atoi(v())
			}
		case "seed":
			opts.Seed, err = strconv.ParseUint(v(), 10, 64)
		case "regions":
			opts.Regions = a.Vals
		case "latency":
			latencies = a.Vals
		case "base":
			opts.Latency, err = time.ParseDuration(v())
		case "loss":
			loss, err = strconv.ParseFloat(v(), 64)
		default:
			fmt.Fprintf(&yaml, "%s: %s\n", a.Key, v())
		}
		if err != nil {
			d.Fatalf(s.t, "cluster: %s: %v", a.Key, err)
		}
	}
	if opts.N == 0 && s.real {
		d.Fatalf(s.t, "cluster: no real-n: this scenario does not run on real TCP")
	}
	if s.MaxAgents > 0 && opts.N > s.MaxAgents {
		s.t.Skipf("%d agents, more than %d: run by make sim, without the race detector", opts.N, s.MaxAgents)
	}
	var probe config.Config
	if err := probe.LoadYAML([]byte(yaml.String()), "cluster directive"); err != nil {
		d.Fatalf(s.t, "cluster: %v", err)
	}
	opts.Config = func(_ int, c *config.Config) {
		if err := c.LoadYAML([]byte(yaml.String()), "cluster directive"); err != nil {
			s.t.Fatal(err)
		}
	}
	s.c = cluster.New(s.t, opts)
	s.Report.Agents = opts.N
	if s.c.Network() != nil {
		for _, l := range latencies {
			pair, dur, ok := strings.Cut(l, ":")
			ra, rb, ok2 := strings.Cut(pair, "-")
			x, err := time.ParseDuration(dur)
			if !ok || !ok2 || err != nil {
				d.Fatalf(s.t, "cluster: latency %q: want <region>-<region>:<duration>", l)
			}
			s.c.Network().SetLatency(ra, rb, x)
		}
		s.c.Network().SetLoss(loss)
	}
	return "ok"
}

// partition cuts the cluster into groups separated by "|": each group is
// node names separated by commas, "region:<r>", or "rest" (every node in
// no other group).
func (s *Script) partition(d *datadriven.TestData) string {
	var groups [][]*cluster.Node
	var cur []*cluster.Node
	rest := -1
	taken := map[*cluster.Node]bool{}
	flush := func() {
		if len(cur) > 0 || rest == len(groups) {
			groups = append(groups, cur)
		}
		cur = nil
	}
	for _, a := range d.CmdArgs {
		switch {
		case a.Key == "|":
			flush()
		case a.Key == "rest":
			rest = len(groups)
		case strings.HasPrefix(a.Key, "region:"):
			r := strings.TrimPrefix(a.Key, "region:")
			for _, n := range s.c.Nodes() {
				if n.Region == r {
					cur = append(cur, n)
					taken[n] = true
				}
			}
		default:
			for name := range strings.SplitSeq(a.Key, ",") {
				n := s.c.Node(name)
				if n == nil {
					d.Fatalf(s.t, "partition: no node %q", name)
				}
				cur = append(cur, n)
				taken[n] = true
			}
		}
	}
	flush()
	if rest >= 0 {
		for _, n := range s.c.Nodes() {
			if !taken[n] {
				groups[rest] = append(groups[rest], n)
			}
		}
	}
	if len(groups) < 2 {
		d.Fatalf(s.t, "partition: want at least two groups separated by |")
	}
	s.c.Partition(groups...)
	return "ok"
}

// write runs one API call on one agent.
func (s *Script) write(d *datadriven.TestData) string {
	n := s.agentOf(d, 0)
	a, ctx := n.Agent(), context.Background()
	target := s.arg(d, 1)
	two := func() (string, string) {
		x, y, ok := strings.Cut(target, "/")
		if !ok {
			d.Fatalf(s.t, "%s: want <a>/<b>, got %q", d.Cmd, target)
		}
		return x, y
	}
	ms := func(key string) int64 { return s.dur(d, key, 0).Milliseconds() }
	var err error
	switch d.Cmd {
	case "svc-set":
		svc, inst := two()
		_, err = a.ServiceSet(ctx, svc, inst, rpc.ServiceSet{Status: s.val(d, "status", "up"), Addr: s.val(d, "addr", ""), TTLMillis: ms("ttl")})
	case "svc-delete":
		svc, inst := two()
		err = a.ServiceDelete(ctx, svc, inst)
	case "bl-add":
		list, id := two()
		_, err = a.BlacklistAdd(ctx, list, id, rpc.BlacklistAdd{TTLMillis: ms("ttl")})
	case "bl-remove":
		list, id := two()
		err = a.BlacklistRemove(ctx, list, id)
	case "task-assign":
		to := ""
		if name := s.val(d, "to", ""); name != "" {
			to = s.c.Node(name).ID()
		}
		_, err = a.TaskAssign(ctx, target, rpc.TaskAssign{Node: to})
	case "task-update":
		_, err = a.TaskUpdate(ctx, target, rpc.TaskUpdate{State: s.val(d, "state", ""), Result: s.val(d, "result", "")})
	case "task-cancel":
		_, err = a.TaskCancel(ctx, target)
	case "claim":
		res, err := a.KernelClaim(ctx, target, rpc.KernelClaim{Keep: true, TTLMillis: ms("ttl"), Job: s.val(d, "job", "")})
		if err != nil {
			return s.errText(err)
		}
		if res.Granted {
			return fmt.Sprintf("granted epoch=%d", res.Kernel.Epoch)
		}
		return fmt.Sprintf("denied: %s", s.kernelText(res.Kernel))
	case "renew":
		k, err := a.KernelRenew(ctx, target, rpc.KernelRenew{TTLMillis: ms("ttl")})
		if err != nil {
			return s.errText(err)
		}
		return s.kernelText(k)
	case "release":
		k, err := a.KernelRelease(ctx, target, rpc.KernelRelease{})
		if err != nil {
			return s.errText(err)
		}
		return s.kernelText(k)
	case "kv-put", "kv-delete":
		var ifVersion *uint64
		if d.HasArg("if-version") {
			v, err := strconv.ParseUint(s.val(d, "if-version", ""), 10, 64)
			if err != nil {
				d.Fatalf(s.t, "%s: if-version: %v", d.Cmd, err)
			}
			ifVersion = &v
		}
		var e rpc.KVEntry
		if d.Cmd == "kv-put" {
			e, err = a.KVPut(ctx, target, rpc.KVPut{Value: s.val(d, "value", ""), TTLMillis: ms("ttl"), IfVersion: ifVersion})
		} else {
			e, err = a.KVDelete(ctx, target, ifVersion)
		}
		if err != nil {
			return s.errText(err)
		}
		return fmt.Sprintf("version=%d", e.Version)
	}
	if err != nil {
		return s.errText(err)
	}
	return "ok"
}

// kvHistory prints one agent's history of a kv key, newest first: value,
// version, writer and mark of each write.
func (s *Script) kvHistory(d *datadriven.TestData) string {
	h, err := s.agentOf(d, 0).Agent().KVHistory(context.Background(), s.arg(d, 1))
	if err != nil {
		return s.errText(err)
	}
	var lines []string
	for _, e := range h {
		line := fmt.Sprintf("%s version=%d writer=%s", e.Value, e.Version, s.c.NameOf(e.Writer))
		switch {
		case e.Current:
			line += " current"
		case e.Conflict:
			line += " conflict"
		}
		if e.Deleted {
			line += " deleted"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// claimRace makes every named node claim the kernel at the same instant and
// reports how many were granted it.
func (s *Script) claimRace(d *datadriven.TestData) string {
	k := s.arg(d, 0)
	a, ok := d.Arg("nodes")
	if !ok {
		d.Fatalf(s.t, "claim-race: nodes=(...) missing")
	}
	ttl := s.dur(d, "ttl", 0).Milliseconds()
	type result struct {
		granted bool
		err     error
	}
	results := make(chan result, len(a.Vals))
	for _, name := range a.Vals {
		n := s.c.Node(name)
		if n == nil || n.Agent() == nil {
			d.Fatalf(s.t, "claim-race: %s is not a running node", name)
		}
		ag := n.Agent()
		go func() {
			res, err := ag.KernelClaim(context.Background(), k, rpc.KernelClaim{Keep: true, TTLMillis: ttl})
			results <- result{res.Granted, err}
		}()
	}
	granted := 0
	for range a.Vals {
		r := <-results
		if r.err != nil {
			return s.errText(r.err)
		}
		if r.granted {
			granted++
		}
	}
	return fmt.Sprintf("granted %d of %d", granted, len(a.Vals))
}

// errText is an error as output: "error: " and its message, with node
// ids replaced by node names.
func (s *Script) errText(err error) string {
	msg := err.Error()
	for _, n := range s.c.Nodes() {
		if n.ID() != "" {
			msg = strings.ReplaceAll(msg, n.ID(), n.Name())
		}
	}
	return "error: " + msg
}

// claimRounds runs rounds of contention for one kernel: every live agent
// claims it at the same instant; exactly one must be granted, every agent
// must then name that one as holder, and the winner releases it before
// the next round. It reports the first round that broke the rule.
func (s *Script) claimRounds(d *datadriven.TestData) string {
	k := s.arg(d, 0)
	var rounds int
	d.ScanArgs(s.t, "rounds", &rounds)
	ctx := context.Background()
	live := s.c.Live()
	for round := range rounds {
		type result struct {
			n   *cluster.Node
			res rpc.ClaimResult
			err error
		}
		results := make(chan result, len(live))
		for _, n := range live {
			go func() {
				res, err := n.Agent().KernelClaim(ctx, k, rpc.KernelClaim{Keep: true, TTLMillis: 60_000})
				results <- result{n, res, err}
			}()
		}
		var winners []string
		var epoch uint64
		for range live {
			r := <-results
			if r.err != nil {
				return fmt.Sprintf("round %d: %s: %s", round, r.n.Name(), s.errText(r.err))
			}
			if r.res.Granted {
				winners = append(winners, r.n.Name())
				epoch = r.res.Kernel.Epoch
			}
		}
		if len(winners) != 1 {
			slices.Sort(winners)
			return fmt.Sprintf("round %d: granted to %d (%s)", round, len(winners), strings.Join(winners, ","))
		}
		want := fmt.Sprintf("all: %s epoch=%d live", winners[0], epoch)
		if got := s.waitFor(2*time.Second, want, func() string { return s.group(s.holderOf(k)) }); got != want {
			return fmt.Sprintf("round %d: holder after the grant to %s:\n%s", round, winners[0], got)
		}
		if _, err := s.c.Node(winners[0]).Agent().KernelRelease(ctx, k, rpc.KernelRelease{}); err != nil {
			return fmt.Sprintf("round %d: release: %s", round, s.errText(err))
		}
		want = fmt.Sprintf("all: %s epoch=%d released", winners[0], epoch)
		if got := s.waitFor(2*time.Second, want, func() string { return s.group(s.holderOf(k)) }); got != want {
			return fmt.Sprintf("round %d: holder after the release:\n%s", round, got)
		}
	}
	return fmt.Sprintf("%d rounds, one grant each", rounds)
}

// waitFor calls f until it returns want or within passes, and returns what
// it last returned.
func (s *Script) waitFor(within time.Duration, want string, f func() string) string {
	start := time.Now()
	for {
		got := f()
		if got == want || time.Since(start) >= within {
			return got
		}
		time.Sleep(cluster.PollEvery)
	}
}

// holderOf observes kernel k on one node.
func (s *Script) holderOf(k string) func(*cluster.Node) string {
	return func(n *cluster.Node) string {
		kv, err := n.Agent().KernelGet(context.Background(), k)
		if err != nil {
			return "none"
		}
		return s.kernelText(kv)
	}
}

// churn makes every live agent write at once: random blacklist adds and
// removes, service sets of shared instances (last writer wins an owner)
// and task assignments, from a seeded random source per node.
func (s *Script) churn(d *datadriven.TestData) string {
	var writes int
	d.ScanArgs(s.t, "writes", &writes)
	seed := uint64(1)
	d.MaybeScanArgs(s.t, "seed", &seed)
	live := s.c.Live()
	errs := make(chan string, len(live))
	for _, n := range live {
		go func() {
			r := rand.New(rand.NewPCG(seed, uint64(n.Index)))
			a, ctx := n.Agent(), context.Background()
			for j := range writes {
				id := fmt.Sprintf("u%d", r.IntN(5))
				var err error
				switch r.IntN(4) {
				case 0, 1:
					_, err = a.BlacklistAdd(ctx, "race", id, rpc.BlacklistAdd{Reason: fmt.Sprintf("by %s #%d", n.Name(), j)})
				case 2:
					err = a.BlacklistRemove(ctx, "race", id)
				case 3:
					_, err = a.ServiceSet(ctx, "db", fmt.Sprintf("i%d", r.IntN(3)), rpc.ServiceSet{Status: "up", Addr: n.Name()})
				}
				if err != nil && rpc.CodeOf(err) != rpc.CodeDenied && rpc.CodeOf(err) != rpc.CodeNotFound {
					errs <- s.errText(err)
					return
				}
				to := live[r.IntN(len(live))].ID()
				if _, err := a.TaskAssign(ctx, fmt.Sprintf("t%d", r.IntN(3)), rpc.TaskAssign{Node: to}); err != nil && rpc.CodeOf(err) != rpc.CodeDenied {
					errs <- s.errText(err)
					return
				}
			}
			errs <- ""
		}()
	}
	for range live {
		if e := <-errs; e != "" {
			return e
		}
	}
	return "ok"
}

// bulk adds keys blacklist entries from one node.
func (s *Script) bulk(d *datadriven.TestData) string {
	a := s.agentOf(d, 0).Agent()
	var keys int
	d.ScanArgs(s.t, "keys", &keys)
	list := s.val(d, "list", "bulk")
	for i := range keys {
		if _, err := a.BlacklistAdd(context.Background(), list, strconv.Itoa(i), rpc.BlacklistAdd{}); err != nil {
			return s.errText(err)
		}
	}
	return "ok"
}

// kernelText describes a kernel as an observation: "n3 epoch=1 live".
func (s *Script) kernelText(k rpc.Kernel) string {
	if k.Holder == "" {
		return "none"
	}
	state := "expired"
	switch {
	case k.Released:
		state = "released"
	case k.Live:
		state = "live"
	}
	return fmt.Sprintf("%s epoch=%d %s", s.c.NameOf(k.Holder), k.Epoch, state)
}

// observe retries an observation until it prints the expected output or
// its time is up, and records how long it took.
func (s *Script) observe(d *datadriven.TestData) string {
	within := s.dur(d, "within", 5*time.Second)
	if d.Rewrite {
		time.Sleep(within)
		return s.look(d)
	}
	want := strings.TrimSpace(d.Expected)
	start := time.Now()
	for {
		got := s.look(d)
		if strings.TrimSpace(got) == want {
			s.Report.Waits = append(s.Report.Waits, time.Since(start))
			_, line, _ := strings.Cut(d.Pos, ":")
			s.Report.Lines = append(s.Report.Lines, line)
			return got
		}
		if time.Since(start) >= within {
			return got // datadriven shows the difference
		}
		time.Sleep(cluster.PollEvery)
	}
}

// look makes one observation on every live agent.
func (s *Script) look(d *datadriven.TestData) string {
	ctx := context.Background()
	if d.Cmd == "converged" {
		return s.converged()
	}
	var per func(n *cluster.Node) string
	switch d.Cmd {
	case "holder":
		out := s.group(s.holderOf(s.arg(d, 0)))
		if d.HasArg("same") {
			// Which of two concurrent claimants wins is not the point:
			// that every agent names the same one is.
			if f := strings.Fields(out); len(f) == 4 && f[0] == "all:" {
				return "all: one holder, " + f[3]
			}
		}
		return out
	case "svc":
		svc, inst, _ := strings.Cut(s.arg(d, 0), "/")
		per = func(n *cluster.Node) string {
			v, err := n.Agent().ServiceGet(ctx, svc, inst)
			if err != nil {
				return "absent"
			}
			return fmt.Sprintf("status=%s up=%t owner=%s", v.Status, v.Up, s.c.NameOf(v.Owner))
		}
	case "bl":
		list, id, _ := strings.Cut(s.arg(d, 0), "/")
		per = func(n *cluster.Node) string {
			if _, ok, _ := n.Agent().BlacklistHas(ctx, list, id); ok {
				return "present"
			}
			return "absent"
		}
	case "kv":
		path := s.arg(d, 0)
		per = func(n *cluster.Node) string {
			e, err := n.Agent().KVGet(ctx, path)
			if err != nil {
				return "absent"
			}
			return fmt.Sprintf("value=%s version=%d writer=%s", e.Value, e.Version, s.c.NameOf(e.Writer))
		}
	case "task":
		id := s.arg(d, 0)
		per = func(n *cluster.Node) string {
			tk, err := n.Agent().TaskGet(ctx, id)
			if err != nil {
				return "absent"
			}
			return fmt.Sprintf("owner=%s state=%s", s.c.NameOf(tk.Owner), tk.State)
		}
	case "member":
		target := s.node(d, 0)
		per = func(n *cluster.Node) string {
			ms, _ := n.Agent().Members(ctx)
			for _, m := range ms {
				if m.Node == target.ID() {
					return m.State
				}
			}
			return "unknown"
		}
	case "queue":
		per = s.queueOf(s.arg(d, 0))
	case "refused":
		path, reason := s.source(d), s.val(d, "reason", "")
		per = func(n *cluster.Node) string {
			if n.Agent().Replica().Counters()[path].Refused[reason] > 0 {
				return "counted"
			}
			return "not counted"
		}
	default:
		d.Fatalf(s.t, "unknown observation %q", d.Cmd)
	}
	return s.group(per)
}

// source parses path=gossip|ae|restore.
func (s *Script) source(d *datadriven.TestData) replica.Source {
	switch p := s.val(d, "path", "gossip"); p {
	case "gossip":
		return replica.Gossip
	case "ae":
		return replica.AntiEntropy
	case "restore":
		return replica.Restore
	default:
		d.Fatalf(s.t, "path %q: want gossip, ae or restore", p)
	}
	return 0
}

// group prints per-node observations: "all: x" when every live node
// shows x, else one "names: x" line per distinct observation.
func (s *Script) group(per func(*cluster.Node) string) string {
	live := s.c.Live()
	by := map[string][]*cluster.Node{}
	for _, n := range live {
		o := per(n)
		by[o] = append(by[o], n)
	}
	if len(by) == 1 {
		for o := range by {
			return "all: " + o
		}
	}
	var lines []string
	for o, ns := range by {
		lines = append(lines, strings.Join(sortedNames(ns), ",")+": "+o)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// converged compares every live agent's svc/, bl/, task/ and kernel/ state
// with the first one's.
func (s *Script) converged() string {
	live := s.c.Live()
	if len(live) == 0 {
		return "no live agent"
	}
	ref := live[0].Agent().Store()
	for _, prefix := range []string{"svc/", "bl/", "task/", "kernel/"} {
		want := ref.List(prefix)
		for _, n := range live[1:] {
			got := n.Agent().Store().List(prefix)
			if len(got) != len(want) {
				return fmt.Sprintf("diverged: %s holds %d keys under %s, %s %d", n.Name(), len(got), prefix, live[0].Name(), len(want))
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					return fmt.Sprintf("diverged: %s and %s differ on %s", n.Name(), live[0].Name(), got[i].Key)
				}
			}
		}
	}
	return "converged"
}

// forge makes a write in another node's name, signed with the adversary's
// own key, and sends it.
func (s *Script) forge(d *datadriven.TestData) string {
	m := s.adversary(d)
	victim := s.c.Node(s.val(d, "as", ""))
	if victim == nil || victim.Agent() == nil {
		d.Fatalf(s.t, "forge: as=<node> missing, unknown or killed")
	}
	key := s.val(d, "key", "")
	if crdt.NamespaceOf(key) == "" {
		d.Fatalf(s.t, "forge: key=%q is not a rumor key", key)
	}
	ctx := context.Background()
	delta := crdt.Delta{Key: key, Stamp: m.Stamp(victim.ID())}
	switch op := s.val(d, "op", "put"); op {
	case "put":
		delta.Op, delta.Value = crdt.OpPut, crdt.Encode(crdt.ServiceValue{Status: s.val(d, "status", "up")})
		if crdt.NamespaceOf(key) == crdt.NSBlacklist {
			delta.Value = nil
		}
	case "delete":
		delta.Op = crdt.OpDelete
	case "claim", "renew", "release":
		delta.Op = map[string]crdt.Op{"claim": crdt.OpClaim, "renew": crdt.OpRenew, "release": crdt.OpRelease}[op]
		k, _ := victim.Agent().KernelGet(ctx, strings.TrimPrefix(key, "kernel/"))
		delta.Epoch, delta.Expiry = k.Epoch, time.Now().Add(time.Hour).UnixMilli()
		if op == "claim" {
			delta.Epoch++
		}
	case "task":
		st, ok := crdt.ParseTaskState(s.val(d, "state", "failed"))
		if !ok {
			d.Fatalf(s.t, "forge: unknown task state")
		}
		tk, _ := victim.Agent().TaskGet(ctx, strings.TrimPrefix(key, "task/"))
		delta.Op, delta.Task, delta.Value = crdt.OpPut, st, crdt.Encode(crdt.TaskValue{Owner: tk.Owner, Result: "forged"})
	default:
		d.Fatalf(s.t, "forge: unknown op %q", op)
	}
	return s.send(d, m, []crdt.Delta{m.Forge(delta)})
}

// send delivers ds by the way via= names (default gossip).
func (s *Script) send(d *datadriven.TestData, m *adversary, ds []crdt.Delta) string {
	if err := m.Send(ds, s.val(d, "via", cluster.ViaGossip)); err != nil {
		return s.errText(err)
	}
	return "ok"
}

// sortedNames returns the names of nodes, sorted.
func sortedNames(ns []*cluster.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name())
	}
	slices.Sort(out)
	return out
}
