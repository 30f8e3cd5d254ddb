package replica

import (
	"context"
	"log/slog"
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
	wake  chan struct{}

	sent     atomic.Uint64   // deltas published
	sentNS   []atomic.Uint64 // sent, by index in crdt.Namespaces
	messages atomic.Uint64   // messages published
	failed   atomic.Uint64   // deltas whose publish failed
	failLog  logLimiter
}

func newPublisher(sign *identity.Signer, st *store.Store, clk clock.Clock, maxDeltas, maxBytes int, log *slog.Logger) *publisher {
	return &publisher{
		sign: sign, store: st, clock: clk, maxDeltas: maxDeltas, maxBytes: maxBytes, log: log,
		queue: make(map[crdt.Namespace][]crdt.Delta), wake: make(chan struct{}, 1),
		sentNS: make([]atomic.Uint64, len(crdt.Namespaces)),
	}
}

// enqueue queues d for publishing. It never blocks.
func (p *publisher) enqueue(ds ...crdt.Delta) {
	p.mu.Lock()
	for _, d := range ds {
		ns := crdt.NamespaceOf(d.Key)
		p.queue[ns] = append(p.queue[ns], d)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run publishes until ctx ends.
func (p *publisher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.flush(ctx)
		}
	}
}

// flush signs and publishes everything queued, one batch at a time. A
// batch whose publish fails is still signed and kept: anti-entropy
// delivers it.
func (p *publisher) flush(ctx context.Context) {
	for {
		ns, batch := p.take()
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

// take removes the next batch from the queue: up to maxDeltas deltas of one
// namespace within maxBytes (at least one delta). The batch is a new slice:
// signing sets its deltas' proofs.
func (p *publisher) take() (crdt.Namespace, []crdt.Delta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ns := range crdt.Namespaces {
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
