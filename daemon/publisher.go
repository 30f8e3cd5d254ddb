package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// publishTopic is what the publisher needs from the gossip layer.
type publishTopic interface {
	Publish(ctx context.Context, topic string, data []byte) error
}

// publisher sends local deltas in batches, like group commit: when nothing
// is in flight a delta leaves at once; while a publish is under way new
// deltas gather (up to maxDeltas / maxBytes per namespace) and leave
// together when it completes. An idle agent pays no batching delay and a
// busy one amortises signing over many deltas.
type publisher struct {
	out       publishTopic
	maxDeltas int
	maxBytes  int
	log       *slog.Logger

	mu    sync.Mutex
	queue map[crdt.Namespace][]crdt.Delta
	wake  chan struct{}

	sent     atomic.Uint64 // deltas published
	sentNS   nsCounter     // sent by namespace
	messages atomic.Uint64 // messages published
	failed   atomic.Uint64 // deltas whose publish failed
	failLog  logLimiter
}

func newPublisher(out publishTopic, maxDeltas, maxBytes int, log *slog.Logger) *publisher {
	return &publisher{
		out: out, maxDeltas: maxDeltas, maxBytes: maxBytes, log: log,
		queue: make(map[crdt.Namespace][]crdt.Delta), wake: make(chan struct{}, 1), sentNS: newNSCounter(),
	}
}

// enqueue queues d for publishing. It never blocks.
func (p *publisher) enqueue(d crdt.Delta) {
	ns := crdt.NamespaceOf(d.Key)
	p.mu.Lock()
	p.queue[ns] = append(p.queue[ns], d)
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

// flush publishes everything queued, one batch at a time.
func (p *publisher) flush(ctx context.Context) {
	for {
		ns, batch := p.take()
		if batch == nil {
			return
		}
		data, err := wire.Encode(batch)
		if err == nil {
			err = p.out.Publish(ctx, string(ns), data)
		}
		if err != nil {
			p.failed.Add(uint64(len(batch)))
			if ok, held := p.failLog.allow(time.Now()); ok {
				p.log.Warn("publish failed; anti-entropy will repair", "namespace", ns, "deltas", len(batch), "err", err, "failures_not_logged", held)
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		p.sent.Add(uint64(len(batch)))
		p.sentNS.add(ns, uint64(len(batch)))
		p.messages.Add(1)
	}
}

// take removes the next batch from the queue: up to maxDeltas deltas of one
// namespace within maxBytes (at least one delta).
func (p *publisher) take() (crdt.Namespace, []crdt.Delta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ns := range crdt.Namespaces {
		q := p.queue[ns]
		if len(q) == 0 {
			continue
		}
		n, size := 0, 16
		for n < len(q) && n < p.maxDeltas {
			size += wire.Size(q[n])
			if n > 0 && size > p.maxBytes {
				break
			}
			n++
		}
		batch := q[:n:n]
		if n == len(q) {
			delete(p.queue, ns)
		} else {
			p.queue[ns] = q[n:]
		}
		return ns, batch
	}
	return "", nil
}
