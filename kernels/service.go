// Package kernels serves one node's kernel leases to its local clients:
// claims (one-shot, or for a client's session), the wait queue, renewals,
// releases and forced releases, run-once slots, and the lease events its
// watchers and sessions hear. The rules are the lease package's; the
// records go through the node's one write path and its store. It owns one
// goroutine, Run's lease loop, which the caller stops with its context.
package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/lease"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/view"
)

// ErrStopped is returned once the node has stopped.
var ErrStopped = errors.New("agent: stopped")

// Deps are what the kernels need of their node.
type Deps struct {
	Self   string
	Config config.Config
	Clock  clock.Clock
	Log    *slog.Logger
	Store  *store.Store
	// Write makes a local write if cond passes (nil: always); it returns
	// ErrStopped once the node has stopped.
	Write func(d crdt.Delta, cond func(crdt.Entry) error) (crdt.Delta, bool, error)
	// GossipDelayP99 is the measured p99 gossip delay (and how many
	// samples it is of).
	GossipDelayP99 func() (time.Duration, int)
	// Peers are the connected peers; PushKey runs a key exchange with one.
	Peers   func() []peer.ID
	PushKey func(ctx context.Context, p peer.ID, key string) error
	// Partitioned reports whether the node is cut off from most of the
	// nodes it saw alive; Dead whether the failure detector holds a node
	// dead.
	Partitioned func() bool
	Dead        func(node string) bool
	// States are the failure detector's verdicts, for views.
	States view.States
	// Closed is closed when the node stops.
	Closed <-chan struct{}
}

// Service is one node's kernel leases. Its methods are safe for
// concurrent use.
type Service struct {
	Deps
	cfg    config.Config
	self   string
	clock  clock.Clock
	log    *slog.Logger
	store  *store.Store
	closed <-chan struct{}

	leases *lease.Holder
	owners *owners
	events *leaseEvents
	denied atomic.Uint64 // claims of this node that another won

	// stopping is closed when a graceful stop begins (Drain).
	stopping chan struct{}
	stopOnce sync.Once
}

// New returns the kernels of the node d describes, with the owners of its
// leases as saved in its store.
func New(d Deps) *Service {
	s := &Service{
		Deps: d, cfg: d.Config, self: d.Self, clock: d.Clock, log: d.Log, store: d.Store, closed: d.Closed,
		leases: lease.NewHolder(d.Self), events: newLeaseEvents(), stopping: make(chan struct{}),
	}
	saved, _ := d.Store.Meta(ownersMeta)
	var err error
	s.owners, err = newOwners(saved, func(by map[string]owner) {
		b, _ := json.Marshal(by) // strings and numbers: cannot fail
		if err := d.Store.SetMeta(ownersMeta, b); err != nil {
			s.log.Warn("saving lease owners", "err", err)
		}
	})
	if err != nil {
		s.log.Warn("the saved owners of this node's leases are unreadable: leases held before a crash are held until they run out, none renewed, none released at once", "err", err)
	}
	return s
}

func (s *Service) nowMS() int64 { return s.clock.Now().UnixMilli() }

func (s *Service) write(d crdt.Delta) (crdt.Delta, bool, error) { return s.Write(d, nil) }

func (s *Service) writeIf(d crdt.Delta, cond func(crdt.Entry) error) (crdt.Delta, bool, error) {
	return s.Write(d, cond)
}

// sleep waits d, or until ctx is done or the node stops.
func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrStopped
	}
}

func (s *Service) ownerDead(node string) bool { return s.Dead(node) }

func (s *Service) taskView(d crdt.Delta) rpc.Task { return view.Task(d, s.nowMS(), s.States) }

// View is the lease l as this node shows it: with its wait queue, and the
// session of this node that holds it.
func (s *Service) View(l crdt.Lease, nowMS int64) rpc.Kernel { return s.kernelView(l, nowMS) }

func (s *Service) kernelView(l crdt.Lease, nowMS int64) rpc.Kernel {
	k := view.Kernel(l, nowMS, s.States)
	k.Waiters = s.queue(crdt.LastSegment(l.Kernel), nowMS)
	if l.Holder == s.self {
		if w, ok := s.owners.get(l.Kernel, l.Epoch); ok {
			k.Session = w.Session
		}
	}
	return k
}

// Lease resolves kernel key's lease from the store.
func (s *Service) Lease(key string) crdt.Lease { return s.lease(key) }

// Held returns how many leases this node holds.
func (s *Service) Held() int { return s.leases.Held() }

// SettleWindow is how long a claimant waits for competing claims now.
func (s *Service) SettleWindow() time.Duration { return s.settleWindow() }

// Counts are the lease events of this node so far, and its denied claims.
type Counts struct{ Granted, Denied, Lost, Expired, Released uint64 }

// Counts returns the lease events of this node so far.
func (s *Service) Counts() Counts {
	return Counts{
		Granted: s.events.granted.Load(), Denied: s.denied.Load(), Lost: s.events.lost.Load(),
		Expired: s.events.expired.Load(), Released: s.events.released.Load(),
	}
}

// Subscribe returns this node's lease events for keys under prefix, and
// the function that ends the subscription. A subscriber that falls behind
// misses events.
func (s *Service) Subscribe(prefix string) (<-chan rpc.Event, func()) {
	return s.events.subscribe(prefix)
}

// badName is the error for a name that cannot be a key segment.
func badName(what, name string) error {
	if err := crdt.CheckName(what, name); err != nil {
		return rpc.BadRequest("%v", err)
	}
	return nil
}

// shortID shortens a node id for logs.
func shortID(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[len(id)-8:]
}
