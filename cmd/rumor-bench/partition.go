package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/internal/netcut"
	"github.com/rumor-dev/rumor/rpc"
)

// PartitionResult is figure 7: agents split in two halves write on both
// sides and both grant the same kernel; after the heal, how long until they
// agree again, and how long two holders existed.
type PartitionResult struct {
	Agents        int `json:"agents"`
	Rounds        int `json:"rounds"` // completed rounds
	KeysPerSide   int `json:"keys_per_side"`
	SettleMs      int `json:"settle_ms"`
	RedialMinMs   int `json:"redial_min_ms"`
	RedialMaxMs   int `json:"redial_max_ms"`
	AntiEntropyMs int `json:"anti_entropy_ms"`
	HeartbeatMs   int `json:"heartbeat_ms"`
	LeaseTTLMs    int `json:"lease_ttl_ms"`
	// BothGranted counts the rounds in which the claims on both sides were
	// granted (two holders at once while cut off).
	BothGranted int `json:"both_granted"`
	// Convergence runs from the heal until every agent holds identical bl/
	// state and sees the same live kernel holder and epoch.
	Convergence benchstat.Summary `json:"convergence"`
	// DoubleGrant runs, in rounds where both sides granted, from the moment
	// the second claim returned granted until the losing claimer's Watch
	// delivered the lease "lost" event. The heal follows the second grant
	// at once, so this is heal + reconnect + resolution.
	DoubleGrant benchstat.Summary `json:"double_grant_window"`
	// LostMissing counts rounds where both sides granted but the loser got
	// no lost event within the deadline.
	LostMissing int `json:"lost_missing"`
	// Reformed runs from the heal until the cluster is formed again: every
	// agent connected to every other and listing every member alive (a
	// lost connection makes a member suspect until it is heard again).
	// Each round starts from a formed cluster.
	Reformed benchstat.Summary `json:"reformed"`
	// Cut is how long the cut took to show (no links across) each round.
	Cut benchstat.Summary `json:"cut"`
	// LoadStart is the 1-minute load average when the phase began.
	LoadStart  float64 `json:"load_start"`
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
	// Per round, in order; -1 where not measured.
	ConvergenceMs []float64 `json:"convergence_ms"`
	DoubleGrantMs []float64 `json:"double_grant_ms"`
	Epochs        []uint64  `json:"epochs"`
}

// partitionParams are figure 7's knobs.
type partitionParams struct {
	agents      int
	rounds      int
	keysPerSide int
	settle      time.Duration
	redialMin   time.Duration
	redialMax   time.Duration
	leaseTTL    time.Duration
	poll        time.Duration
	within      time.Duration // deadline for each wait
}

const (
	partitionList   = "part"
	partitionKernel = "k"
)

// halves splits agent indexes 0..n-1 into a first and a second half.
func halves(n int) (left, right []int) {
	for i := range n {
		if i < n/2 {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	return left, right
}

// entriesDiff reports the first difference between two sorted entry lists.
func entriesDiff(want, got []crdt.Entry) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d keys, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			return fmt.Errorf("differs on %s", got[i].Key)
		}
	}
	return nil
}

// partLab is a cluster whose links can be cut with netcut gaters.
type partLab struct {
	c      *cluster
	gaters []*netcut.Gater
	ids    []peer.ID
}

// partition cuts every link between the agents in a and those in b.
func (l *partLab) partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			l.gaters[i].Block(l.ids[j], true)
			l.gaters[j].Block(l.ids[i], true)
		}
	}
	for _, i := range a {
		for _, j := range b {
			_ = l.c.agents[i].Gossip().ClosePeer(l.ids[j])
			_ = l.c.agents[j].Gossip().ClosePeer(l.ids[i])
		}
	}
}

// heal lifts every cut; the agents' redialers reconnect on their own.
func (l *partLab) heal() {
	for i, g := range l.gaters {
		for j := range l.gaters {
			if i != j {
				g.Block(l.ids[j], false)
			}
		}
	}
}

// linked returns an error naming a link between a and b that is still up.
func (l *partLab) linked(a, b []int) error {
	for _, i := range a {
		for _, p := range l.c.agents[i].Gossip().Peers() {
			for _, j := range b {
				if p == l.ids[j] {
					return fmt.Errorf("agent %d still connected to agent %d", i, j)
				}
			}
		}
	}
	return nil
}

// converged returns nil once every agent holds the same bl/ entries and
// sees the same live holder and epoch of the kernel.
func (l *partLab) converged(ctx context.Context) (rpc.Kernel, error) {
	as := l.c.agents
	first, err := as[0].KernelGet(ctx, partitionKernel)
	if err != nil {
		return first, fmt.Errorf("agent 0: %w", err)
	}
	if !first.Live {
		return first, errors.New("agent 0 sees no live holder")
	}
	for i, a := range as[1:] {
		k, err := a.KernelGet(ctx, partitionKernel)
		if err != nil || k.Holder != first.Holder || k.Epoch != first.Epoch || !k.Live {
			return first, fmt.Errorf("agent %d sees holder %s epoch %d live %v (%v), agent 0 %s epoch %d", i+1, k.Holder, k.Epoch, k.Live, err, first.Holder, first.Epoch)
		}
	}
	want := as[0].Store().List("bl/")
	for i, a := range as[1:] {
		if err := entriesDiff(want, a.Store().List("bl/")); err != nil {
			return first, fmt.Errorf("agent %d's bl/ against agent 0's: %w", i+1, err)
		}
	}
	return first, nil
}

// formed returns nil once every agent is connected to every other and
// lists every agent as an alive member.
func (l *partLab) formed(ctx context.Context) error {
	n := len(l.c.agents)
	for i, a := range l.c.agents {
		if p := len(a.Gossip().Peers()); p < n-1 {
			return fmt.Errorf("agent %d has %d of %d peers", i, p, n-1)
		}
		ms, err := a.Members(ctx)
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range ms {
			if m.State == "alive" {
				alive++
			}
		}
		if alive != n {
			return fmt.Errorf("agent %d lists %d of %d members alive", i, alive, n)
		}
	}
	return nil
}

// leaseWatch records when a Watch on one agent delivers the lease "lost" event.
type leaseWatch struct {
	mu     sync.Mutex
	lostAt time.Time
	stop   context.CancelFunc
	done   chan struct{}
}

func watchLeases(ctx context.Context, a *agent.Agent) *leaseWatch {
	wctx, stop := context.WithCancel(ctx)
	w := &leaseWatch{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_ = a.Watch(wctx, rpc.WatchRequest{Prefix: "kernel/" + partitionKernel}, func(ev rpc.Event) error {
			if ev.Op == "lease" && ev.Lease == rpc.LeaseLost {
				now := time.Now()
				w.mu.Lock()
				if w.lostAt.IsZero() {
					w.lostAt = now
				}
				w.mu.Unlock()
			}
			return nil
		})
	}()
	return w
}

func (w *leaseWatch) lost() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lostAt, !w.lostAt.IsZero()
}

func (w *leaseWatch) close() {
	w.stop()
	<-w.done
}

// runPartition starts pp.agents agents behind netcut gaters and, each
// round, cuts them into two halves, writes on both sides, claims the same
// kernel on both sides, heals and times the agreement and the loser's
// lost event; the winner then releases the kernel.
func runPartition(ctx context.Context, pp partitionParams, p params) (res PartitionResult, err error) {
	n := pp.agents
	res = PartitionResult{Agents: n, KeysPerSide: pp.keysPerSide,
		SettleMs: int(pp.settle / time.Millisecond), RedialMinMs: int(pp.redialMin / time.Millisecond),
		RedialMaxMs: int(pp.redialMax / time.Millisecond), HeartbeatMs: int(p.cluster.heartbeat / time.Millisecond),
		LeaseTTLMs: int(pp.leaseTTL / time.Millisecond), LoadStart: benchstat.LoadAverage()}
	if n < 4 {
		return res, fmt.Errorf("partition needs at least 4 agents, got %d", n)
	}
	l := &partLab{gaters: make([]*netcut.Gater, n)}
	for i := range l.gaters {
		l.gaters[i] = netcut.New()
	}
	opt := p.cluster
	opt.configure = func(_ int, cfg *config.Config) {
		cfg.Settle = pp.settle
		cfg.RedialMin, cfg.RedialMax = pp.redialMin, pp.redialMax
	}
	opt.options = func(i int) agent.Options {
		return agent.Options{HostOptions: []libp2p.Option{libp2p.ConnectionGater(l.gaters[i])}}
	}
	c, err := startCluster(ctx, n, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	l.c = c
	res.AntiEntropyMs = int(c.cfgs[0].AntiEntropy / time.Millisecond)
	for _, a := range c.agents {
		l.ids = append(l.ids, a.Gossip().ID())
	}

	var conv, window, cut, reformed []time.Duration
	defer func() {
		res.Convergence, res.DoubleGrant, res.Cut, res.Reformed = benchstat.Summarize(conv), benchstat.Summarize(window), benchstat.Summarize(cut), benchstat.Summarize(reformed)
	}()
	meter := startCPUMeter()
	defer func() { res.CPUCores, res.OtherCores = meter.cores() }()
	left, right := halves(n)
	sides := [2][]int{left, right}
	if err := pollUntil(ctx, time.Now().Add(pp.within), pp.poll, func() error { return l.formed(ctx) }); err != nil {
		return res, fmt.Errorf("before the first round: %w", err)
	}
	reason := blacklistReason(p.payload)
	for round := range pp.rounds {
		cutAt := time.Now()
		l.partition(left, right)
		if err := pollUntil(ctx, time.Now().Add(pp.within), pp.poll, func() error {
			return errors.Join(l.linked(left, right), l.linked(right, left))
		}); err != nil {
			return res, fmt.Errorf("round %d: cut: %w", round, err)
		}
		cut = append(cut, time.Since(cutAt))

		// Writes on both sides, spread over each side's agents.
		for s, side := range sides {
			for k := range pp.keysPerSide {
				a := c.agents[side[k%len(side)]]
				id := fmt.Sprintf("r%03d-s%d-%03d", round, s, k)
				if _, err := a.BlacklistAdd(ctx, partitionList, id, rpc.BlacklistAdd{Reason: reason}); err != nil {
					return res, fmt.Errorf("round %d: bl add: %w", round, err)
				}
			}
		}

		// One claimer per side, watching its lease events from before its claim.
		claimers := [2]int{left[round%len(left)], right[(round+1)%len(right)]}
		var watches [2]*leaseWatch
		for s, i := range claimers {
			before := c.agents[i].Store().Watchers()
			watches[s] = watchLeases(ctx, c.agents[i])
			if err := pollUntil(ctx, time.Now().Add(pp.within), time.Millisecond, func() error {
				if c.agents[i].Store().Watchers() <= before {
					return errors.New("watch not subscribed")
				}
				return nil
			}); err != nil {
				return res, fmt.Errorf("round %d: agent %d: %w", round, i, err)
			}
		}
		stopWatches := func() {
			for _, w := range watches {
				w.close()
			}
		}
		var (
			results  [2]rpc.ClaimResult
			errs     [2]error
			returned [2]time.Time
			wg       sync.WaitGroup
		)
		for s, i := range claimers {
			wg.Go(func() {
				results[s], errs[s] = c.agents[i].KernelClaim(ctx, partitionKernel, rpc.KernelClaim{Keep: true, TTLMillis: pp.leaseTTL.Milliseconds(), Job: fmt.Sprintf("round %d", round)})
				returned[s] = time.Now()
			})
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			stopWatches()
			return res, fmt.Errorf("round %d: claim: %w", round, err)
		}
		both := results[0].Granted && results[1].Granted
		bothAt := returned[0]
		if returned[1].After(bothAt) {
			bothAt = returned[1]
		}

		l.heal()
		healed := time.Now()
		if both {
			res.BothGranted++
		}
		// After the heal, poll until every agent agrees, the losing
		// claimer was told, and the cluster is formed again.
		var (
			agreed               rpc.Kernel
			convAt, lostAt       time.Time
			formedAt             time.Time
			lostWanted, lostSeen bool
			loser                = -1
		)
		waitErr := pollUntil(ctx, healed.Add(pp.within), pp.poll, func() error {
			var errs []error
			if convAt.IsZero() {
				if k, err := l.converged(ctx); err != nil {
					errs = append(errs, err)
				} else {
					convAt, agreed = time.Now(), k
					for s, i := range claimers {
						if c.agents[i].ID() != agreed.Holder {
							loser = s
						}
					}
					lostWanted = both && loser >= 0
				}
			}
			if lostWanted && !lostSeen {
				if lostAt, lostSeen = watches[loser].lost(); !lostSeen {
					errs = append(errs, errors.New("the losing claimer got no lost event"))
				}
			}
			if formedAt.IsZero() {
				if err := l.formed(ctx); err != nil {
					errs = append(errs, err)
				} else {
					formedAt = time.Now()
				}
			}
			return errors.Join(errs...)
		})
		if convAt.IsZero() {
			stopWatches()
			return res, fmt.Errorf("round %d: no agreement within %v of the heal: %w", round, pp.within, waitErr)
		}
		conv = append(conv, convAt.Sub(healed))
		res.ConvergenceMs = append(res.ConvergenceMs, math.Round(benchstat.Ms(convAt.Sub(healed))*10)/10)
		res.Epochs = append(res.Epochs, agreed.Epoch)
		res.DoubleGrantMs = append(res.DoubleGrantMs, -1)
		switch {
		case both && loser < 0:
			stopWatches()
			return res, fmt.Errorf("round %d: both claimers granted but neither is the agreed holder %s", round, agreed.Holder)
		case lostSeen:
			window = append(window, lostAt.Sub(bothAt))
			res.DoubleGrantMs[round] = math.Round(benchstat.Ms(lostAt.Sub(bothAt))*10) / 10
		case lostWanted:
			res.LostMissing++
		}
		if formedAt.IsZero() {
			stopWatches()
			return res, fmt.Errorf("round %d: not formed again within %v of the heal: %w", round, pp.within, waitErr)
		}
		reformed = append(reformed, formedAt.Sub(healed))
		stopWatches()

		// The winner releases; wait until nobody sees it live.
		for _, a := range c.agents {
			if a.ID() == agreed.Holder {
				if _, err := a.KernelRelease(ctx, partitionKernel, rpc.KernelRelease{}); err != nil {
					return res, fmt.Errorf("round %d: release: %w", round, err)
				}
			}
		}
		if err := pollUntil(ctx, time.Now().Add(pp.within), pp.poll, func() error {
			for i, a := range c.agents {
				if k, _ := a.KernelGet(ctx, partitionKernel); k.Live {
					return fmt.Errorf("agent %d still sees the kernel held by %s", i, k.Holder)
				}
			}
			return nil
		}); err != nil {
			return res, fmt.Errorf("round %d: release: %w", round, err)
		}
		res.Rounds++
	}
	return res, nil
}
