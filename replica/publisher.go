package replica

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// Publisher sends a payload on a namespace's gossip topic; gossip.Node
// implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, data []byte) error
}

// publisher signs and sends local deltas in batches, like group commit:
// when nothing is in flight a delta leaves at once; while a publish is
// under way new deltas gather (up to maxDeltas / maxBytes per namespace)
// and leave together when it completes. An idle agent pays no batching
// delay and a busy one pays one signature for many deltas. A signed batch
// gives its deltas their proofs in the store too, so that anti-entropy and
// the state file carry them.
//
// The namespaces form two classes, each with its own queues and its own
// goroutine that signs and publishes: the priority lane (blacklists,
// kernel leases, the wait queue, membership's member entries and
// accusations; see InLane) and the bulk namespaces (tasks, service
// status). A delta of the lane never waits for a bulk delta, queued or in
// flight: a flood of svc writes that keeps the bulk goroutine publishing
// without pause does not delay a bl add or a lease renewal (rumor-bench
// figure 10). Within a class, the next batch is taken from the first
// namespace in the class's order that has deltas queued.
type publisher struct {
	out       Publisher
	sign      *identity.Signer
	store     *store.Store
	clock     clock.Clock
	maxDeltas int
	maxBytes  int
	log       *slog.Logger

	mu    sync.Mutex
	queue map[crdt.Namespace][]crdt.Delta
	wake  [nClasses]chan struct{}

	sent     atomic.Uint64   // deltas published
	sentNS   []atomic.Uint64 // sent, by index in crdt.Namespaces
	messages atomic.Uint64   // messages published
	failed   atomic.Uint64   // deltas whose publish failed
	failLog  logLimiter
}

// The publisher's classes.
const (
	laneClass = iota
	bulkClass
	nClasses
)

// lane is the priority lane, in the order its publisher serves it:
// blacklists, kernel leases and the wait queue must not wait behind bulk
// traffic, nor membership's node/ registers: member entries (written once
// per run, and to refute) and accusations, which make a node suspect and
// dead.
var lane = []crdt.Namespace{crdt.NSBlacklist, crdt.NSKernel, crdt.NSWait, crdt.NSNode}

// classes lists each class's namespaces in the order its publisher serves
// them. Together they are crdt.Namespaces.
var classes = [nClasses][]crdt.Namespace{
	laneClass: lane,
	bulkClass: {crdt.NSTask, crdt.NSService, crdt.NSKV},
}

// InLane reports whether ns is in the priority lane. The publisher signs
// and sends its deltas apart from the bulk namespaces' (svc, task), so
// that none waits for a bulk delta, and the agent carries its topic on the
// gossip layer's lane router (gossip.Config.Lane), whose queues bulk
// traffic does not reach.
func InLane(ns crdt.Namespace) bool { return slices.Contains(lane, ns) }

// classOf is the class of ns: the lane's or the bulk one (any namespace
// not in the lane).
func classOf(ns crdt.Namespace) int {
	if InLane(ns) {
		return laneClass
	}
	return bulkClass
}

func newPublisher(sign *identity.Signer, st *store.Store, clk clock.Clock, maxDeltas, maxBytes int, log *slog.Logger) *publisher {
	p := &publisher{
		sign: sign, store: st, clock: clk, maxDeltas: maxDeltas, maxBytes: maxBytes, log: log,
		queue:  make(map[crdt.Namespace][]crdt.Delta),
		sentNS: make([]atomic.Uint64, len(crdt.Namespaces)),
	}
	for c := range p.wake {
		p.wake[c] = make(chan struct{}, 1)
	}
	return p
}

// enqueue queues ds for publishing. It never blocks.
func (p *publisher) enqueue(ds ...crdt.Delta) {
	var woken [nClasses]bool
	p.mu.Lock()
	for _, d := range ds {
		ns := crdt.NamespaceOf(d.Key)
		p.queue[ns] = append(p.queue[ns], d)
		woken[classOf(ns)] = true
	}
	p.mu.Unlock()
	for c, w := range woken {
		if !w {
			continue
		}
		select {
		case p.wake[c] <- struct{}{}:
		default:
		}
	}
}

// run publishes, one goroutine per class, until ctx ends.
func (p *publisher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for c := range nClasses {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-p.wake[c]:
					p.flushClass(ctx, c)
				}
			}
		})
	}
	wg.Wait()
}

// flush publishes everything queued, the lane first.
func (p *publisher) flush(ctx context.Context) {
	for c := range nClasses {
		p.flushClass(ctx, c)
	}
}

// flushClass signs and publishes everything queued in class c, one batch
// at a time. A batch whose publish fails is still signed and kept:
// anti-entropy delivers it.
func (p *publisher) flushClass(ctx context.Context, c int) {
	for {
		ns, batch := p.take(c)
		if batch == nil {
			return
		}
		if err := p.sign.Sign(batch); err != nil {
			p.log.Error("cannot sign local writes; they stay unsigned and unsent", "namespace", ns, "deltas", len(batch), "err", err)
			continue
		}
		p.store.Attach(batch)
		var err error
		if p.out == nil {
			err = errNoPublisher
		} else {
			var data []byte
			if data, err = wire.Encode(batch); err == nil {
				err = p.out.Publish(ctx, string(ns), data)
			}
		}
		if err != nil {
			p.failed.Add(uint64(len(batch)))
			if ok, held := p.failLog.allow(p.clock.Now()); ok {
				p.log.Warn("publish failed; anti-entropy will repair", "namespace", ns, "deltas", len(batch), "err", err, "failures_not_logged", held)
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		p.sent.Add(uint64(len(batch)))
		if i := nsIndex(ns); i >= 0 {
			p.sentNS[i].Add(uint64(len(batch)))
		}
		p.messages.Add(1)
	}
}

// take removes class c's next batch from the queue: up to maxDeltas deltas
// of the class's first namespace that has any, within maxBytes (at least
// one delta). The batch is a new slice: signing sets its deltas' proofs.
func (p *publisher) take(c int) (crdt.Namespace, []crdt.Delta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ns := range classes[c] {
		q := p.queue[ns]
		if len(q) == 0 {
			continue
		}
		n, size := 0, 32
		for n < len(q) && n < p.maxDeltas {
			size += wire.Size(q[n])
			if n > 0 && size > p.maxBytes {
				break
			}
			n++
		}
		batch := make([]crdt.Delta, n)
		copy(batch, q[:n])
		if n == len(q) {
			delete(p.queue, ns)
		} else {
			p.queue[ns] = q[n:]
		}
		return ns, batch
	}
	return "", nil
}

// nsIndex is ns's index in crdt.Namespaces, -1 if none.
func nsIndex(ns crdt.Namespace) int {
	for i, n := range crdt.Namespaces {
		if n == ns {
			return i
		}
	}
	return -1
}
