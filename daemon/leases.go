package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// held is a lease this agent won and has not given up.
type held struct {
	lease   crdt.Lease
	ttl     int64 // ms, the claim's length; renewals extend by the same
	renewed int64 // wall ms of the last renewal (or the grant)
	suspect bool  // a suspect event was sent for the current episode
}

// leases tracks the kernels this agent holds: it renews them every ttl/3,
// notices when they expire or are lost to another node's claim, and sends
// lease events to watchers.
type leases struct {
	mu   sync.Mutex
	held map[string]*held // by kernel key

	subMu sync.Mutex
	subs  map[*leaseSub]struct{}
}

type leaseSub struct {
	prefix string
	ch     chan rpc.Event
}

func newLeases() *leases {
	return &leases{held: make(map[string]*held), subs: make(map[*leaseSub]struct{})}
}

// subscribe returns a channel of lease events for kernels under prefix.
// A subscriber that falls behind misses events rather than blocking the
// agent; the store watch it rides along with reports the data itself.
func (ls *leases) subscribe(prefix string) (*leaseSub, func()) {
	s := &leaseSub{prefix: prefix, ch: make(chan rpc.Event, 256)}
	ls.subMu.Lock()
	ls.subs[s] = struct{}{}
	ls.subMu.Unlock()
	return s, func() {
		ls.subMu.Lock()
		delete(ls.subs, s)
		ls.subMu.Unlock()
	}
}

func (ls *leases) emit(ev rpc.Event) {
	ls.subMu.Lock()
	defer ls.subMu.Unlock()
	for s := range ls.subs {
		if strings.HasPrefix(ev.Key, s.prefix) {
			select {
			case s.ch <- ev:
			default:
			}
		}
	}
}

// leaseEvent sends one lease event about kernel lease l.
func (a *Agent) leaseEvent(kind string, l crdt.Lease) {
	now := a.nowMS()
	a.leaseStats.count(kind)
	if kind != rpc.LeaseRenewed {
		a.log.Info("kernel "+kind, "kernel", lastSegment(l.Kernel), "epoch", l.Epoch, "holder", shortID(l.Holder))
	}
	a.leases.emit(rpc.Event{
		Key: l.Kernel, Op: "lease", Lease: kind, Node: a.self, Stamp: crdt.MakeHLC(now, 0).String(),
		Time: msTime(now), Value: a.kernelView(l, now),
	})
}

// granted records a lease this agent just won.
func (a *Agent) granted(l crdt.Lease, ttl int64) {
	a.leases.mu.Lock()
	a.leases.held[l.Kernel] = &held{lease: l, ttl: ttl, renewed: a.nowMS()}
	a.leases.mu.Unlock()
	a.leaseEvent(rpc.LeaseGranted, l)
}

// released forgets a lease this agent released.
func (a *Agent) released(l crdt.Lease) {
	a.leases.mu.Lock()
	delete(a.leases.held, l.Kernel)
	a.leases.mu.Unlock()
	a.leaseEvent(rpc.LeaseReleased, l)
}

// resumeLeases takes back the leases this agent held before a restart
// (they are in its persisted state): it renews them again, or, if they ran
// out meanwhile, the lease loop reports them expired.
func (a *Agent) resumeLeases() {
	now := a.nowMS()
	for _, e := range a.store.List("kernel/") {
		l := crdt.Resolve(e)
		if l.Holder != a.self || l.Released {
			continue
		}
		from := l.Granted.HLC.WallMS()
		if !l.Renewed.IsZero() {
			from = l.Renewed.HLC.WallMS()
		}
		a.leases.mu.Lock()
		a.leases.held[l.Kernel] = &held{lease: l, ttl: max(l.Expiry-from, 1), renewed: min(from, now)}
		a.leases.mu.Unlock()
		a.log.Info("resuming lease held before restart", "kernel", lastSegment(l.Kernel), "epoch", l.Epoch, "live", l.Live(now))
	}
}

// leaseLoop checks held leases every tick and whenever a kernel changes.
func (a *Agent) leaseLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	w := a.store.Watch("kernel/", 1024)
	defer func() { w.Close() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-w.C():
			if !ok { // fell behind: resubscribe, the tick re-reads everything
				w = a.store.Watch("kernel/", 1024)
			}
		}
		a.checkLeases()
	}
}

// checkLeases renews what is due and reports what was lost or expired.
func (a *Agent) checkLeases() {
	now := a.nowMS()
	suspect := a.partitioned()
	a.leases.mu.Lock()
	keys := make([]string, 0, len(a.leases.held))
	for k := range a.leases.held {
		keys = append(keys, k)
	}
	a.leases.mu.Unlock()
	for _, key := range keys {
		a.leases.mu.Lock()
		h, ok := a.leases.held[key]
		if !ok {
			a.leases.mu.Unlock()
			continue
		}
		mine := h.lease
		a.leases.mu.Unlock()
		l := a.lease(lastSegment(key))
		var event string
		switch {
		case l.Holder != a.self || l.Epoch != mine.Epoch || l.Granted != mine.Granted:
			event = rpc.LeaseLost
		case l.Released:
			event = rpc.LeaseReleased
		case !l.Live(now):
			event = rpc.LeaseExpired
		}
		if event != "" {
			a.leases.mu.Lock()
			delete(a.leases.held, key)
			a.leases.mu.Unlock()
			a.leaseEvent(event, l)
			continue
		}
		if suspect {
			if a.suspectLease(h, l) {
				continue // released by self-fencing
			}
		}
		a.leases.mu.Lock()
		if !suspect {
			h.suspect = false
		}
		due := now-h.renewed >= h.ttl/3
		a.leases.mu.Unlock()
		if due {
			if _, _, err := a.write(crdt.Delta{Key: key, Op: crdt.OpRenew, Epoch: l.Epoch, Expiry: now + h.ttl}); err != nil {
				continue
			}
			a.leases.mu.Lock()
			h.renewed, h.lease = now, a.lease(lastSegment(key))
			a.leases.mu.Unlock()
			a.leaseEvent(rpc.LeaseRenewed, h.lease)
		}
	}
}

// suspectLease handles a held lease while this agent is cut off from more
// than half of the nodes it recently saw alive: it says so once per
// episode ("suspect": the other side may grant the kernel too), and with
// self_fence releases the lease at once, reporting true. Without
// self_fence the lease is still renewed: the holder decides, as DESIGN.md
// has it, and the lease rule settles any double grant when the cut heals.
func (a *Agent) suspectLease(h *held, l crdt.Lease) bool {
	a.leases.mu.Lock()
	first := !h.suspect
	h.suspect = true
	a.leases.mu.Unlock()
	if first {
		a.leaseEvent(rpc.LeaseSuspect, l)
	}
	if !a.cfg.SelfFence {
		return false
	}
	if _, err := a.KernelRelease(context.Background(), lastSegment(l.Kernel)); err != nil {
		a.log.Warn("self-fence release", "kernel", lastSegment(l.Kernel), "err", err)
		return false
	}
	return true
}

// partitioned reports whether this agent has lost contact with more than
// half of the nodes it recently saw alive (heard within 3 x dead_after,
// and at least the last 30 s).
func (a *Agent) partitioned() bool {
	lost, seen := a.members.Unreachable(a.nowMS(), max(3*a.cfg.DeadAfter, 30*time.Second).Milliseconds())
	return 2*lost > seen
}
