package antientropy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
)

// Timeout bounds one exchange.
const Timeout = 60 * time.Second

// Stream is one stream of an exchange, over the transport.
type Stream = gossip.Stream

// Transport is what a Syncer needs of the network; gossip.Node implements
// it. Its methods may be called from any goroutine.
type Transport interface {
	// OpenStream opens a stream of protocol proto to p over a connection
	// that is already open. It never dials: reconnecting is the
	// redialer's job, with its backoff (a peer that refuses us must not
	// be redialled behind its back).
	OpenStream(ctx context.Context, p peer.ID, proto string) (Stream, error)
	// Handle serves proto: h runs on its own goroutine for every stream a
	// peer opens, until stop is called.
	Handle(proto string, h func(Stream)) (stop func())
	// Peers returns the peers connected now.
	Peers() []peer.ID
}

// Config configures a Syncer.
type Config struct {
	// Cluster names the protocol (see Protocol).
	Cluster string
	// Interval is how often the Syncer starts an exchange with a random
	// connected peer.
	Interval time.Duration
	// Cutoff returns the cutoff of a periodic exchange: records stamped
	// later are likely still on their way by gossip and are left out of
	// the digest (see Initiate). Exchanges on a new connection compare
	// everything. Nil: periodic exchanges compare everything too.
	Cutoff func() crdt.HLC
	// Rand picks the periodic peer; used by the Syncer's goroutine only.
	Rand *rand.Rand
	// Logger receives one line per exchange that repaired state.
	Logger *slog.Logger
}

// Counters are what a Syncer did since it started.
type Counters struct {
	Rounds   uint64 // exchanges completed
	Repaired uint64 // received deltas that changed local state
	Failed   uint64 // exchanges that failed
}

// Syncer runs an agent's anti-entropy: it answers the exchanges peers
// start, starts one with every newly connected peer (a join, a healed
// partition, a restarted peer) and one with a random peer every
// Config.Interval.
type Syncer struct {
	cfg Config
	t   Transport
	st  State
	now chan peer.ID

	rounds, repaired, failed atomic.Uint64
}

// NewSyncer returns a Syncer of st over t; Run starts it.
func NewSyncer(cfg Config, t Transport, st State) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	return &Syncer{cfg: cfg, t: t, st: st, now: make(chan peer.ID, 64)}
}

// Connected asks for an exchange with p, which just connected. It never
// blocks: during a burst of connections the periodic exchanges catch up.
func (s *Syncer) Connected(p peer.ID) {
	select {
	case s.now <- p:
	default:
	}
}

// Counters returns what the Syncer did so far.
func (s *Syncer) Counters() Counters {
	return Counters{Rounds: s.rounds.Load(), Repaired: s.repaired.Load(), Failed: s.failed.Load()}
}

// Run serves the protocol and starts exchanges until ctx ends, then stops
// serving and returns once every exchange, started or answered, has ended.
func (s *Syncer) Run(ctx context.Context) {
	var (
		mu      sync.Mutex
		ended   bool
		serving sync.WaitGroup
	)
	handle := func(answer func(io.ReadWriter, State) (Stats, error)) func(Stream) {
		return func(st Stream) {
			mu.Lock()
			if ended {
				mu.Unlock()
				_ = st.Close()
				return
			}
			serving.Add(1)
			mu.Unlock()
			defer serving.Done()
			s.serve(ctx, st, answer)
		}
	}
	stopSync := s.t.Handle(Protocol(s.cfg.Cluster), handle(Respond))
	stopKey := s.t.Handle(KeyProtocol(s.cfg.Cluster), handle(AnswerKey))
	defer func() {
		stopSync()
		stopKey()
		mu.Lock()
		ended = true
		mu.Unlock()
		serving.Wait()
	}()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		var p peer.ID
		full := false
		select {
		case <-ctx.Done():
			return
		case p = <-s.now:
			// Every new connection gets an exchange, even if one with the
			// same peer just ended: a partition may have come and gone in
			// between. A redundant exchange costs one digest.
			full = true
		case <-t.C:
			peers := s.t.Peers()
			if len(peers) == 0 {
				continue
			}
			p = peers[s.cfg.Rand.IntN(len(peers))]
		}
		s.exchange(ctx, p, full)
	}
}

// exchange runs one exchange with p as the initiator: of every record if
// full, else of those older than the cutoff.
func (s *Syncer) exchange(ctx context.Context, p peer.ID, full bool) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	st, err := s.t.OpenStream(ctx, p, Protocol(s.cfg.Cluster))
	if err != nil {
		if ctx.Err() == nil {
			s.failed.Add(1)
			s.cfg.Logger.Debug("anti-entropy: open stream", "peer", p, "err", err)
		}
		return
	}
	var before crdt.HLC
	if !full && s.cfg.Cutoff != nil {
		before = s.cfg.Cutoff()
	}
	stats, err := within(ctx, st, func(rw io.ReadWriter) (Stats, error) { return Initiate(rw, s.st, before) })
	s.done("initiated", p, stats, err)
}

// within runs f on st until ctx ends: st's deadline is ctx's, and when
// ctx ends st is reset, not closed (libp2p's Close of a stream whose
// protocol reply has not arrived yet waits for it and pushes the read
// deadline out to do so, which held a key exchange with a cut-off peer
// seconds past its timeout in the simulated scenario
// claim-with-silent-peer). Afterwards st is closed if f succeeded, and
// reset if it failed (the peer may never answer a close).
func within(ctx context.Context, st Stream, f func(io.ReadWriter) (Stats, error)) (Stats, error) {
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stats, err := f(st)
	if err != nil {
		_ = st.Reset()
	} else {
		_ = st.Close()
	}
	return stats, err
}

// serve answers an exchange a peer started, within Timeout.
func (s *Syncer) serve(ctx context.Context, st Stream, answer func(io.ReadWriter, State) (Stats, error)) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	stats, err := within(ctx, st, func(rw io.ReadWriter) (Stats, error) { return answer(rw, s.st) })
	s.done("answered", st.Peer(), stats, err)
}

// PushKey runs a key exchange of key with p (see the function PushKey),
// within ctx. It fails if no connection to p is open.
func (s *Syncer) PushKey(ctx context.Context, p peer.ID, key string) error {
	st, err := s.t.OpenStream(ctx, p, KeyProtocol(s.cfg.Cluster))
	if err != nil {
		return err
	}
	stats, err := within(ctx, st, func(rw io.ReadWriter) (Stats, error) { return PushKey(rw, s.st, key) })
	s.done("key exchange", p, stats, err)
	return err
}

func (s *Syncer) done(role string, p peer.ID, st Stats, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.failed.Add(1)
			s.cfg.Logger.Debug("anti-entropy failed", "role", role, "peer", p, "err", err)
		}
		return
	}
	s.rounds.Add(1)
	s.repaired.Add(uint64(st.Repaired))
	if st.Repaired > 0 {
		s.cfg.Logger.Info("anti-entropy repaired state", "role", role, "peer", p,
			"buckets", st.Buckets, "sent", st.Sent, "received", st.Received, "repaired", st.Repaired)
	}
}
