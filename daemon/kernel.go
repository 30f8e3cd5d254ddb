package daemon

import (
	"context"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// lease resolves the kernel's current lease from the local store.
func (a *Agent) lease(id string) crdt.Lease {
	e, _ := a.store.Get(kernelKey(id))
	if e.Key == "" {
		e.Key = kernelKey(id)
	}
	return crdt.Resolve(e)
}

func (a *Agent) leaseTTL(ms int64) (int64, error) {
	if ms < 0 {
		return 0, rpc.BadRequest("ttl must not be negative")
	}
	if ms == 0 {
		return a.cfg.LeaseTTL.Milliseconds(), nil
	}
	return ms, nil
}

// KernelClaim implements rpc.API, following DESIGN.md's lease rule: refuse
// at once if another node holds a live lease (judged with the skew bound as
// margin); otherwise gossip a claim for the next epoch, wait the settle
// window for competing claims, and report whether ours is still the winner.
func (a *Agent) KernelClaim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.ClaimResult{}, err
	}
	ttl, err := a.leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.ClaimResult{}, err
	}
	now := a.nowMS()
	l := a.lease(id)
	switch {
	case l.Holder == a.self && l.Live(now):
		k, err := a.renew(l, ttl)
		a.leases.mu.Lock()
		if _, ok := a.leases.held[l.Kernel]; !ok { // held before a restart, or by a lost claim race
			a.leases.held[l.Kernel] = &held{lease: a.lease(id), ttl: ttl, renewed: now}
		}
		a.leases.mu.Unlock()
		return rpc.ClaimResult{Granted: err == nil, Kernel: k}, err
	case l.Holder != "" && !l.Released && now < l.Expiry+a.cfg.MaxSkew.Milliseconds():
		// Denied. If that claim is younger than a settle window, a claim
		// with a smaller stamp may still be on its way: name the winner
		// only once the competing claim has settled.
		if wait := l.Granted.HLC.WallMS() + a.settleWindow().Milliseconds() - now; wait > 0 {
			if err := a.sleep(ctx, time.Duration(wait)*time.Millisecond); err != nil {
				return rpc.ClaimResult{}, err
			}
			l = a.lease(id)
		}
		a.claimDenied(l)
		return rpc.ClaimResult{Kernel: a.kernelView(l, a.nowMS())}, nil
	}
	claim, _, err := a.write(crdt.Delta{Key: kernelKey(id), Op: crdt.OpClaim, Epoch: l.MaxEpoch + 1, Expiry: now + ttl, Value: []byte(req.Job)})
	if err != nil {
		return rpc.ClaimResult{}, err
	}
	if err := a.sleep(ctx, a.settleWindow()); err != nil {
		return rpc.ClaimResult{}, err
	}
	l = a.lease(id)
	won := l.Granted == claim.Stamp
	if won {
		a.granted(l, ttl)
	} else {
		a.claimDenied(l)
	}
	return rpc.ClaimResult{Granted: won, Kernel: a.kernelView(l, a.nowMS())}, nil
}

// renew extends a lease this node holds.
func (a *Agent) renew(l crdt.Lease, ttl int64) (rpc.Kernel, error) {
	now := a.nowMS()
	if _, _, err := a.write(crdt.Delta{Key: l.Kernel, Op: crdt.OpRenew, Epoch: l.Epoch, Expiry: now + ttl}); err != nil {
		return rpc.Kernel{}, err
	}
	return a.kernelView(a.lease(lastSegment(l.Kernel)), now), nil
}

// KernelRenew implements rpc.API.
func (a *Agent) KernelRenew(_ context.Context, id string, req rpc.KernelRenew) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	ttl, err := a.leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.Kernel{}, err
	}
	l := a.lease(id)
	if l.Holder != a.self || !l.Live(a.nowMS()) {
		return rpc.Kernel{}, a.notHolder(id, l)
	}
	k, err := a.renew(l, ttl)
	a.leases.mu.Lock()
	if h, ok := a.leases.held[l.Kernel]; ok {
		h.ttl, h.renewed = ttl, a.nowMS()
	}
	a.leases.mu.Unlock()
	return k, err
}

// KernelRelease implements rpc.API.
func (a *Agent) KernelRelease(_ context.Context, id string) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	l := a.lease(id)
	if l.Holder != a.self || l.Released {
		return rpc.Kernel{}, a.notHolder(id, l)
	}
	if _, _, err := a.write(crdt.Delta{Key: l.Kernel, Op: crdt.OpRelease, Epoch: l.Epoch}); err != nil {
		return rpc.Kernel{}, err
	}
	l = a.lease(id)
	a.released(l)
	return a.kernelView(l, a.nowMS()), nil
}

// claimDenied counts and logs a claim of this agent that another won.
func (a *Agent) claimDenied(l crdt.Lease) {
	a.leaseStats.denied.Add(1)
	a.log.Info("kernel claim denied", "kernel", lastSegment(l.Kernel), "epoch", l.Epoch, "holder", shortID(l.Holder))
}

func (a *Agent) notHolder(id string, l crdt.Lease) error {
	if l.Holder == "" || !l.Live(a.nowMS()) {
		return rpc.Denied("kernel %s is not held by this node", id)
	}
	return rpc.Denied("kernel %s is held by node %s (epoch %d)", id, l.Holder, l.Epoch)
}

// KernelGet implements rpc.API.
func (a *Agent) KernelGet(_ context.Context, id string) (rpc.Kernel, error) {
	if err := badName("kernel id", id); err != nil {
		return rpc.Kernel{}, err
	}
	if _, ok := a.store.Get(kernelKey(id)); !ok {
		return rpc.Kernel{}, rpc.NotFound("no kernel %s", id)
	}
	return a.kernelView(a.lease(id), a.nowMS()), nil
}

// KernelList implements rpc.API.
func (a *Agent) KernelList(context.Context) ([]rpc.Kernel, error) {
	now := a.nowMS()
	out := []rpc.Kernel{}
	for _, e := range a.store.List("kernel/") {
		out = append(out, a.kernelView(crdt.Resolve(e), now))
	}
	return out, nil
}
