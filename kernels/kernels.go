package kernels

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/lease"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/view"
)

// lease resolves the kernel's current lease from the local store.
func (s *Service) lease(key string) crdt.Lease {
	e, _ := s.store.Get(key)
	if e.Key == "" {
		e.Key = key
	}
	return crdt.Resolve(e)
}

// settleWindow is how long a claimant waits for competing claims.
func (s *Service) settleWindow() time.Duration {
	p99, _ := s.GossipDelayP99()
	return lease.SettleWindow(s.cfg.Settle, p99, s.cfg.SettleMin, s.cfg.SettleMax)
}

// leaseTTL is the TTL a claim or renewal of ms asks for (0: lease_ttl). A
// TTL below the settle bound plus lease_margin is refused: the claim could
// be granted with no time left to use it.
func (s *Service) leaseTTL(ms int64) (int64, error) {
	if ms < 0 {
		return 0, rpc.BadRequest("ttl must not be negative")
	}
	if ms == 0 {
		return s.cfg.LeaseTTL.Milliseconds(), nil
	}
	if floor := s.cfg.MinLeaseTTL(); ms < floor.Milliseconds() {
		return 0, rpc.BadRequest("ttl %v is below the minimum lease TTL %v (settle bound %v + lease_margin %v)",
			time.Duration(ms)*time.Millisecond, floor, s.cfg.SettleBound(), s.cfg.LeaseMargin)
	}
	return ms, nil
}

// Claim is rpc.API's KernelClaim, following DESIGN.md's lease rule (see
// lease.Decide): refuse at once if another node holds a live lease (judged
// with the skew bound as margin); otherwise gossip a claim for the next
// epoch, wait the settle window for competing claims, exchange the
// kernel's records with every connected peer, and report whether ours is
// still the winner.
//
// The exchange is what makes a grant safe in a connected cluster whatever
// gossip's delays: a claim is decided and written in one step (nothing is
// merged in between), and a key exchange hands the peer our records before
// it answers with its own. So for two claimants A and B that exchange
// with each other, either B wrote its claim before it got ours, and our
// exchange with B brings it back, or B decides after it got ours, sees the
// kernel held and does not claim. Both then judge the same claims and name
// the same winner. Gossip's settle window still covers the peers we have
// no connection to (a cluster larger than max_peers), as it alone did
// before; a peer that does not answer within settle_max (or a third of the
// TTL, if less) is left out, as a partitioned one is.
//
// A one-shot claim (this method) is the agent's: with req.Keep the agent
// renews it every ttl/3 until it is released, without it the lease runs out
// after its TTL unless renewed. A one-shot claim of a kernel that a
// one-shot claim of this agent holds renews it; one that a session holds
// is denied. With req.WaitMillis the claim waits its turn (see wait).
func (s *Service) Claim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	return s.claimWaiting(ctx, id, req, owner{Keep: req.Keep}, nil)
}

// claimWaiting claims id for w, waiting up to req.WaitMillis for it while
// another claimant holds it; waiting is called once if it must wait.
func (s *Service) claimWaiting(ctx context.Context, id string, req rpc.KernelClaim, w owner, waiting func(rpc.Kernel) error) (rpc.ClaimResult, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.ClaimResult{}, err
	}
	ttl, err := s.leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.ClaimResult{}, err
	}
	if req.WaitMillis < 0 {
		return rpc.ClaimResult{}, rpc.BadRequest("wait must not be negative")
	}
	if req.WaitMillis == 0 {
		return s.claim(ctx, id, req.Job, ttl, w, "")
	}
	return s.wait(ctx, id, req, ttl, w, waiting)
}

// claim runs one claim of id for w (see KernelClaim), whose wait entry,
// if it waits, is qid's: a claim of a free kernel is made only by the head
// of the kernel's wait queue, or by anyone if nobody waits.
func (s *Service) claim(ctx context.Context, id, job string, ttl int64, w owner, qid string) (rpc.ClaimResult, error) {
	key := crdt.KernelKey(id)
	settle := s.settleWindow()
	decide := func(l crdt.Lease) lease.Decision {
		return lease.Decide(l, s.self, s.nowMS(), s.cfg.MaxSkew.Milliseconds(), settle.Milliseconds())
	}
	var (
		claim  crdt.Delta
		err    error
		waited bool // for a young competing claim to settle, once
	)
	for {
		l := s.lease(key)
		dec := decide(l)
		if dec.Action == lease.Renew && !s.owners.mayUse(l, w.Session) {
			// Held by another session of this agent, or claimed by one
			// that is still settling: another claimant, on this host.
			dec = lease.Decision{Action: lease.Deny}
		}
		if dec.Action == lease.Claim {
			if head, ok := s.overtakes(id, qid); ok {
				s.log.Info("kernel claim denied: waiters are queued", "kernel", id, "head", shortID(head.Node)+"."+head.Session)
				s.denied.Add(1)
				return rpc.ClaimResult{Kernel: s.kernelView(l, s.nowMS())}, nil
			}
		}
		switch dec.Action {
		case lease.Renew:
			k, err := s.renew(l, ttl)
			// Held before a restart, or by a lost claim race.
			s.leases.Track(s.lease(key), ttl, s.nowMS(), w.Session == "" && w.Keep)
			return rpc.ClaimResult{Granted: err == nil, Kernel: k}, err
		case lease.Deny:
			// If that claim is younger than a settle window, a claim with a
			// smaller stamp may still be on its way: name the winner only
			// once the competing claim has settled.
			// Once: a kernel that changes hands all the time would
			// otherwise keep a claim deciding for as long as it does.
			if dec.WaitMS > 0 && !waited {
				if err := s.sleep(ctx, time.Duration(dec.WaitMS)*time.Millisecond); err != nil {
					return rpc.ClaimResult{}, err
				}
				waited = true
				continue // decide again: it has settled (a forced release, say, is free by now)
			}
			s.claimDenied(l)
			return rpc.ClaimResult{Kernel: s.kernelView(l, s.nowMS())}, nil
		}
		w.Epoch = dec.Epoch
		claim, _, err = s.writeIf(crdt.Delta{Key: key, Op: crdt.OpClaim, Epoch: dec.Epoch, Expiry: s.nowMS() + ttl, Value: []byte(job)},
			func(cur crdt.Entry) error {
				if cur.Key == "" {
					cur.Key = key
				}
				if again := decide(crdt.Resolve(cur)); again.Action != lease.Claim || again.Epoch != dec.Epoch {
					return errClaimRaced
				}
				if _, ok := s.owners.claim(key, w); !ok {
					return errClaimRaced
				}
				return nil
			})
		if !errors.Is(err, errClaimRaced) {
			break
		}
		// A record arrived between our look and our write: look again.
	}
	if err != nil {
		s.owners.drop(key, w.Epoch)
		return rpc.ClaimResult{}, err
	}
	if err := s.sleep(ctx, settle); err != nil {
		s.abandon(key, claim)
		return rpc.ClaimResult{}, err
	}
	s.exchangeKey(ctx, key, ttl)
	l := s.lease(key)
	won := l.Granted == claim.Stamp
	if won && ctx.Err() != nil {
		s.abandon(key, claim) // the claimant has gone: nobody would use or release it
		return rpc.ClaimResult{}, ctx.Err()
	}
	if won {
		s.emit(s.leases.Granted(l, ttl, s.nowMS(), w.Session == "" && w.Keep))
	} else {
		s.owners.drop(key, w.Epoch)
		s.claimDenied(l)
	}
	return rpc.ClaimResult{Granted: won, Kernel: s.kernelView(l, s.nowMS())}, nil
}

// abandon gives up claim, whose claimant went away while it settled:
// released if it won, forgotten if not.
func (s *Service) abandon(key string, claim crdt.Delta) {
	defer s.owners.drop(key, claim.Epoch)
	if l := s.lease(key); l.Granted == claim.Stamp && !l.Released {
		if _, _, err := s.write(crdt.Delta{Key: key, Op: crdt.OpRelease, Epoch: claim.Epoch}); err != nil {
			s.log.Warn("release of an abandoned claim", "kernel", crdt.LastSegment(key), "err", err)
		}
	}
}

// errClaimRaced: the kernel changed between a claim's decision and its
// write.
var errClaimRaced = errors.New("agent: kernel changed while claiming")

// exchangeKey runs a key exchange of key with every connected peer at
// once, and returns when all have ended, or settle_max or a third of the
// lease's ttl (ms) has passed, whichever is sooner: a peer that has not
// answered by then is left out, as a cut-off one is, and the lease keeps
// two thirds of its life for the holder to renew it.
func (s *Service) exchangeKey(ctx context.Context, key string, ttl int64) {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.SettleMax, time.Duration(ttl)*time.Millisecond/3))
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range s.Peers() {
		wg.Go(func() {
			if err := s.PushKey(ctx, p, key); err != nil {
				s.log.Debug("kernel claim: key exchange failed", "kernel", crdt.LastSegment(key), "peer", shortID(p.String()), "err", err)
			}
		})
	}
	wg.Wait()
}

// renew extends a lease this node holds.
func (s *Service) renew(l crdt.Lease, ttl int64) (rpc.Kernel, error) {
	now := s.nowMS()
	if _, _, err := s.write(crdt.Delta{Key: l.Kernel, Op: crdt.OpRenew, Epoch: l.Epoch, Expiry: now + ttl}); err != nil {
		return rpc.Kernel{}, err
	}
	return s.kernelView(s.lease(l.Kernel), now), nil
}

// Renew is rpc.API's KernelRenew: a one-shot claim's renewal, or a session's keepalive.
func (s *Service) Renew(_ context.Context, id string, req rpc.KernelRenew) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	ttl, err := s.leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.Kernel{}, err
	}
	key := crdt.KernelKey(id)
	l := s.lease(key)
	if l.Holder != s.self || !l.Live(s.nowMS()) || !s.owners.mayUse(l, req.Session) {
		return rpc.Kernel{}, s.notOwner(id, l, req.Session)
	}
	k, err := s.renew(l, ttl)
	if err == nil {
		s.emit(s.leases.Renewed(key, s.lease(key), ttl, s.nowMS()))
	}
	return k, err
}

// Release is rpc.API's KernelRelease: the release of a session's lease or a
// one-shot claim's, or an operator's forced release (see forceRelease).
func (s *Service) Release(ctx context.Context, id string, req rpc.KernelRelease) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	if req.Force {
		return s.forceRelease(ctx, id, req.Reason)
	}
	l := s.lease(crdt.KernelKey(id))
	if l.Holder == s.self && !s.owners.mayUse(l, req.Session) {
		return rpc.Kernel{}, s.notOwner(id, l, req.Session)
	}
	return s.release(l)
}

// release writes the release of l, a lease of this node.
func (s *Service) release(l crdt.Lease) (rpc.Kernel, error) {
	id := crdt.LastSegment(l.Kernel)
	if l.Holder != s.self || l.Released {
		return rpc.Kernel{}, s.notHolder(id, l)
	}
	if _, _, err := s.write(crdt.Delta{Key: l.Kernel, Op: crdt.OpRelease, Epoch: l.Epoch}); err != nil {
		return rpc.Kernel{}, err
	}
	s.owners.drop(l.Kernel, l.Epoch)
	l = s.lease(l.Kernel)
	s.emit(s.leases.Released(l))
	return s.kernelView(l, s.nowMS()), nil
}

// forceRelease frees kernel id whoever holds it: an operator's way out of
// a holder that is dead or stuck. It claims the next epoch at once, without
// waiting for the holder's lease to run out (the highest epoch wins, so the
// holder's agent reports "lost" as soon as the claim reaches it), and
// releases that claim. The claim's job records who forced it, when (its
// stamp) and which epoch it took away. A claim of the same epoch by a
// waiter may win over it; the kernel is then that claimant's, as it
// should be.
func (s *Service) forceRelease(ctx context.Context, id, reason string) (rpc.Kernel, error) {
	key := crdt.KernelKey(id)
	l := s.lease(key)
	now := s.nowMS()
	if l.Holder == "" || l.Released {
		return s.kernelView(l, now), nil // free already
	}
	job := fmt.Sprintf("forced release of epoch %d (held by %s) by %s", l.Epoch, l.Holder, s.self)
	if reason != "" {
		job += ": " + reason
	}
	if len(job) > s.cfg.MaxValueBytes {
		return rpc.Kernel{}, rpc.BadRequest("reason is too long: the record would be %d bytes, max_value_bytes is %d", len(job), s.cfg.MaxValueBytes)
	}
	epoch := l.MaxEpoch + 1
	if _, _, err := s.write(crdt.Delta{Key: key, Op: crdt.OpClaim, Epoch: epoch, Expiry: now + s.cfg.MinLeaseTTL().Milliseconds(), Value: []byte(job)}); err != nil {
		return rpc.Kernel{}, err
	}
	if _, _, err := s.write(crdt.Delta{Key: key, Op: crdt.OpRelease, Epoch: epoch}); err != nil {
		return rpc.Kernel{}, err
	}
	s.log.Warn("kernel released by force", "kernel", id, "epoch", l.Epoch, "holder", shortID(l.Holder), "reason", reason)
	s.exchangeKey(ctx, key, s.cfg.MinLeaseTTL().Milliseconds())
	return s.kernelView(s.lease(key), s.nowMS()), nil
}

// claimDenied counts and logs a claim of this agent that another won.
func (s *Service) claimDenied(l crdt.Lease) {
	s.denied.Add(1)
	s.log.Info("kernel claim denied", "kernel", crdt.LastSegment(l.Kernel), "epoch", l.Epoch, "holder", shortID(l.Holder))
}

// notOwner is the error for a renewal or release by session (a one-shot
// claim's if "") of a lease it does not hold.
func (s *Service) notOwner(id string, l crdt.Lease, session string) error {
	if l.Holder == s.self && l.Live(s.nowMS()) {
		if w, ok := s.owners.get(l.Kernel, l.Epoch); ok && w.Session != session {
			if w.Session == "" {
				return rpc.Denied("kernel %s is held by a one-shot claim of this node (epoch %d), not by session %s", id, l.Epoch, session)
			}
			return rpc.Denied("kernel %s is held by session %s of this node (epoch %d)", id, w.Session, l.Epoch)
		}
	}
	return s.notHolder(id, l)
}

func (s *Service) notHolder(id string, l crdt.Lease) error {
	if l.Holder == "" || !l.Live(s.nowMS()) {
		return rpc.Denied("kernel %s is not held by this node", id)
	}
	return rpc.Denied("kernel %s is held by node %s (epoch %d)", id, l.Holder, l.Epoch)
}

// Get is rpc.API's KernelGet.
func (s *Service) Get(_ context.Context, id string) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	key := crdt.KernelKey(id)
	if _, ok := s.store.Get(key); !ok {
		return rpc.Kernel{}, rpc.NotFound("no kernel %s", id)
	}
	return s.kernelView(s.lease(key), s.nowMS()), nil
}

// List is rpc.API's KernelList.
func (s *Service) List(context.Context) ([]rpc.Kernel, error) {
	now := s.nowMS()
	out := []rpc.Kernel{}
	for _, e := range s.store.List("kernel/") {
		out = append(out, s.kernelView(crdt.Resolve(e), now))
	}
	return out, nil
}

// Resume takes back the leases this agent held before a restart.
func (s *Service) Resume() {
	var ls []crdt.Lease
	for _, e := range s.store.List("kernel/") {
		ls = append(ls, crdt.Resolve(e))
	}
	now := s.nowMS()
	var sessions []crdt.Lease
	keep := func(l crdt.Lease) bool {
		w, ok := s.owners.get(l.Kernel, l.Epoch)
		if ok && w.Session != "" {
			sessions = append(sessions, l)
		}
		return ok && w.Keep
	}
	for _, l := range s.leases.Resume(ls, now, keep) {
		s.log.Info("resuming lease held before restart", "kernel", crdt.LastSegment(l.Kernel), "epoch", l.Epoch, "live", l.Live(now))
	}
	// A session's client lost its stream with the agent: free its kernel.
	for _, l := range sessions {
		if _, err := s.release(l); err != nil {
			s.log.Warn("release of a session's lease after restart", "kernel", crdt.LastSegment(l.Kernel), "err", err)
		}
	}
}

// ReleaseAll releases every lease this agent holds: a graceful stop. A
// released lease is free everywhere within one gossip round; one left to
// expire would keep its kernel held for up to its TTL.
//
// The releases are also handed to every connected peer by key exchange
// (within releaseExchange): gossip published at the moment the host
// closes may never leave it.
func (s *Service) ReleaseAll() {
	var released []string
	for _, l := range s.leases.Leases() {
		if cur := s.lease(l.Kernel); cur.Holder == s.self && cur.Epoch == l.Epoch && !cur.Released {
			if _, err := s.release(cur); err != nil {
				s.log.Warn("release on stop", "kernel", crdt.LastSegment(l.Kernel), "err", err)
				continue
			}
			released = append(released, l.Kernel)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseExchange)
	defer cancel()
	var wg sync.WaitGroup
	for _, key := range released {
		wg.Go(func() { s.exchangeKey(ctx, key, releaseExchange.Milliseconds()*3) })
	}
	wg.Wait()
}

// releaseExchange bounds the key exchanges of a graceful stop's releases.
const releaseExchange = 300 * time.Millisecond

// stepEvery is the longest the lease holder goes unstepped.
const stepEvery = 100 * time.Millisecond

// Run steps the lease holder every stepEvery, when a renewal falls due
// (a lease of a short TTL is renewed at its third, not up to stepEvery
// later), and whenever a kernel changes, and carries out what it asks:
// renewals, self-fencing releases, events.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTimer(stepEvery)
	defer t.Stop()
	w := s.store.Watch("kernel/", 1024)
	defer func() { w.Close() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-w.C():
			if !ok { // fell behind: resubscribe, the tick re-reads everything
				w = s.store.Watch("kernel/", 1024)
			}
		}
		s.stepLeases()
		wait := stepEvery
		if due, ok := s.leases.NextRenewal(); ok {
			wait = min(wait, max(time.Duration(due-s.nowMS())*time.Millisecond, time.Millisecond))
		}
		t.Reset(wait)
	}
}

func (s *Service) stepLeases() {
	st := s.leases.Step(s.nowMS(), s.lease, s.Partitioned(), s.cfg.SelfFence)
	for _, ev := range st.Events {
		s.emit(ev)
	}
	for _, ev := range st.Events {
		if ev.Kind == lease.Lost || ev.Kind == lease.Expired || ev.Kind == lease.Released {
			s.owners.dropUpTo(ev.Lease.Kernel, ev.Lease.Epoch)
		}
	}
	for _, l := range st.Release {
		if _, err := s.release(l); err != nil {
			s.log.Warn("self-fence release", "kernel", crdt.LastSegment(l.Kernel), "err", err)
		}
	}
	for _, r := range st.Renew {
		if _, _, err := s.write(crdt.Delta{Key: r.Kernel, Op: crdt.OpRenew, Epoch: r.Epoch, Expiry: r.Expiry}); err != nil {
			continue
		}
		s.emit(s.leases.Renewed(r.Kernel, s.lease(r.Kernel), r.TTL, s.nowMS()))
	}
}

// emit counts, logs and sends to watchers one lease event of this agent.
func (s *Service) emit(ev lease.Event) {
	now := s.nowMS()
	s.events.count(ev.Kind)
	if ev.Kind != lease.Renewed {
		s.log.Info("kernel "+string(ev.Kind), "kernel", crdt.LastSegment(ev.Lease.Kernel), "epoch", ev.Lease.Epoch, "holder", shortID(ev.Lease.Holder))
	}
	s.events.send(rpc.Event{
		Key: ev.Lease.Kernel, Op: "lease", Lease: string(ev.Kind), Node: s.self, Stamp: crdt.MakeHLC(now, 0).String(),
		Time: view.Time(now), Value: s.kernelView(ev.Lease, now),
	})
}

// leaseEvents fans this agent's lease events out to watchers and counts
// them. A watcher that falls behind misses events rather than blocking the
// agent; the store watch it rides along with reports the data itself.
type leaseEvents struct {
	mu   sync.Mutex
	subs map[chan rpc.Event]string // channel -> key prefix

	granted, lost, expired, released atomic.Uint64
}

func newLeaseEvents() *leaseEvents { return &leaseEvents{subs: make(map[chan rpc.Event]string)} }

func (l *leaseEvents) subscribe(prefix string) (<-chan rpc.Event, func()) {
	ch := make(chan rpc.Event, 256)
	l.mu.Lock()
	l.subs[ch] = prefix
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

func (l *leaseEvents) send(ev rpc.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch, prefix := range l.subs {
		if strings.HasPrefix(ev.Key, prefix) {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

func (l *leaseEvents) count(k lease.Kind) {
	switch k {
	case lease.Granted:
		l.granted.Add(1)
	case lease.Lost:
		l.lost.Add(1)
	case lease.Expired:
		l.expired.Add(1)
	case lease.Released:
		l.released.Add(1)
	}
}

// Settle waits a settle window for competing writes of key, then
// exchanges key with every connected peer, as a claim does before naming
// its winner: afterwards the key's winner here is the one that every
// connected peer names (a task's concurrent assignments, say).
func (s *Service) Settle(ctx context.Context, key string) error {
	if err := s.sleep(ctx, s.settleWindow()); err != nil {
		return err
	}
	s.exchangeKey(ctx, key, s.cfg.LeaseTTL.Milliseconds())
	return nil
}

// Exchange runs a key exchange of key with every connected peer, as a
// claim does for its kernel (bounded by settle_max and a third of ttl,
// in ms): afterwards this node holds every write of key that those peers
// held.
func (s *Service) Exchange(ctx context.Context, key string, ttl int64) {
	s.exchangeKey(ctx, key, ttl)
}
