// Package replica is the one ingest path of an agent: every delta, a local
// write or one that arrived by gossip, anti-entropy or from the state file,
// enters here and passes the same steps, in order:
//
//	decode → limits → verify the signer → write policy → clock skew and HLC →
//	merge into the store → persist → events, counters, lag
//
// The writer a delta names in its stamp is trusted only because its
// signature verifies (package identity), whoever relayed the delta; the
// write policy is judged against that verified writer. A local write is
// stamped here and signed in its batch when it is published; the store
// takes the proof as soon as the batch is signed. Transports (gossip,
// anti-entropy) only hand bytes or decoded deltas in: nothing else applies
// anything to the store. Every refusal is counted by path and reason.
package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/digest"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

const (
	// StateFile is the replicated state's file inside the data dir.
	StateFile = "state.db"
	// MetaLastRunning records when the agent last ran (wall ms), to spot a
	// return after more than the tombstone horizon.
	MetaLastRunning = "last_running"
	// reserveAhead is how far ahead of the stamps it issues the replica
	// durably reserves HLC values, so a restart never reuses a stamp.
	reserveAhead = 1000 // ms
	// cutoffMin is the least a periodic anti-entropy exchange leaves out:
	// records stamped within max(cutoffMin, 3 × the measured p99 gossip
	// delay), at most the exchange interval, are likely still on their
	// way by gossip.
	cutoffMin = 2 * time.Second
)

// ErrStopped is returned by Write after Close.
var ErrStopped = errors.New("replica: stopped")

var errNoPublisher = errors.New("replica: not started")

// Config configures a Replica.
type Config struct {
	// DataDir holds the state file.
	DataDir string
	// ResetState moves the state file aside at open and starts empty.
	ResetState bool
	// MaxSkew is how far ahead of this node's clock a stamp may be.
	MaxSkew time.Duration
	// TombstoneHorizon: deletes and expired entries older than this are
	// collected, and a replica that was away longer starts empty.
	TombstoneHorizon time.Duration
	// BatchMaxDeltas and BatchMaxBytes bound one published batch.
	BatchMaxDeltas, BatchMaxBytes int
	// Limits bound an entry and a gossip message (SetLimits changes them).
	Limits Limits
	// BLWriters are the nodes that may write blacklists, empty for any;
	// KVWriters, per kv path prefix, the nodes that may write under it
	// (SetPolicy changes both).
	BLWriters []string
	KVWriters map[string][]string
}

// Deps are a Replica's collaborators.
type Deps struct {
	// Signer signs this node's writes; its id is this node's.
	Signer *identity.Signer
	// Verifier checks every remote delta's proof.
	Verifier *identity.Verifier
	// Clock is the wall clock. Default clock.System.
	Clock clock.Clock
	// Logger. Default: discard.
	Logger *slog.Logger
	// Applied, if set, is told about every delta that changed the state,
	// after the store applied it, with the path it came by and the time
	// it was applied (wall ms). It runs on the ingest path: it must be
	// quick and must not call back into the replica's write methods.
	Applied func(src Source, changed []crdt.Delta, nowMS int64)
}

// Replica is an agent's replicated state and its one ingest path. Its
// methods are safe for concurrent use.
type Replica struct {
	cfg    Config
	deps   Deps
	self   string
	log    *slog.Logger
	clock  clock.Clock
	store  *store.Store
	pub    *publisher
	delays *delays
	stats  *counters

	policy atomic.Pointer[Policy]
	limits atomic.Pointer[Limits]

	// mu serialises the stateful steps of ingest (skew, HLC, merge) and
	// stamping: one step at a time, like raft's.
	mu       sync.Mutex
	hlc      crdt.Clock
	reserved int64 // wall ms up to which stamps are durably reserved

	unsigned  []crdt.Delta // own writes the state file holds unsigned
	clockWarn atomic.Int64 // wall ms of the last own-clock warning
	refusals  refusalLog
	closed    chan struct{}
	closeOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// Open opens the state file in cfg.DataDir (creating it) and returns the
// replica holding it. Every record of the file passes the ingest path's
// admission (signature and write policy) before it is served; own writes
// left unsigned by a crash are signed and published by Start. A replica
// whose state is older than the tombstone horizon starts empty (merging it
// could resurrect collected deletes). Start begins publishing; Close
// stops it and closes the file.
func Open(cfg Config, deps Deps) (*Replica, error) {
	if deps.Clock == nil {
		deps.Clock = clock.System{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Signer == nil || deps.Verifier == nil {
		return nil, errors.New("replica: a signer and a verifier are required")
	}
	r := &Replica{
		cfg: cfg, deps: deps, self: deps.Signer.ID(), log: deps.Logger, clock: deps.Clock,
		delays: newDelays(1024), stats: newCounters(), closed: make(chan struct{}),
	}
	p := NewPolicy(cfg.BLWriters, cfg.KVWriters)
	r.policy.Store(&p)
	l := cfg.Limits
	r.limits.Store(&l)
	if err := r.openStore(); err != nil {
		return nil, err
	}
	r.pub = newPublisher(deps.Signer, r.store, r.clock, cfg.BatchMaxDeltas, cfg.BatchMaxBytes, r.log)
	return r, nil
}

// openStore opens the state file, restores the clock past every stamp this
// node may have issued, and resets the state if it is older than the
// tombstone horizon.
func (r *Replica) openStore() error {
	path := filepath.Join(r.cfg.DataDir, StateFile)
	if r.cfg.ResetState {
		moved, err := store.ResetFile(path)
		if err != nil {
			return err
		}
		if moved != "" {
			r.log.Warn("reset-state: moved the old state aside; resyncing from peers", "moved_to", moved)
		}
	}
	// Heartbeats are re-learnt within a second of a restart; persisting
	// them would cost a commit every flush interval on an idle cluster.
	ephemeral := func(key string) bool { return crdt.NamespaceOf(key) == crdt.NSNode }
	st, err := store.Open(path, store.Options{Logger: r.log, Ephemeral: ephemeral, Check: r.admitStored})
	if err != nil {
		return err
	}
	r.store = st
	r.reserved = st.ReservedHLC().WallMS()
	r.hlc.Restore(crdt.MakeHLC(r.reserved, 0))
	now := r.nowMS()
	if b, ok := st.Meta(MetaLastRunning); ok && len(b) == 8 {
		if away := now - int64(binary.BigEndian.Uint64(b)); away > r.cfg.TombstoneHorizon.Milliseconds() {
			r.log.Warn("away longer than the tombstone horizon: resetting state and resyncing from peers",
				"away", (time.Duration(away) * time.Millisecond).Round(time.Second), "horizon", r.cfg.TombstoneHorizon)
			if err := st.Reset(); err != nil {
				_ = st.Close()
				return err
			}
			r.unsigned = nil
		}
	}
	if err := r.markRunning(); err != nil {
		_ = st.Close()
		return err
	}
	r.log.Info("state loaded", "keys", st.Len(), "file", path, "refused", st.Refused(), "unsigned_own", len(r.unsigned))
	return nil
}

// admitStored is the state file's admission (store.Options.Check): the
// signature and the write policy, as for any delta from a peer. Own writes
// whose batch was not signed before the agent stopped are kept, to be
// signed and published by Start.
func (r *Replica) admitStored(ds []crdt.Delta) []error {
	errs := r.deps.Verifier.Verify(ds)
	pol, lim := r.policy.Load(), *r.limits.Load()
	for i, d := range ds {
		if errors.Is(errs[i], identity.ErrUnsigned) && d.Stamp.Node == r.self {
			errs[i] = nil
			r.unsigned = append(r.unsigned, d)
		}
		if errs[i] != nil {
			errs[i] = signatureRefusal(errs[i])
		} else if err := pol.check(d, lim); err != nil {
			errs[i] = err
		}
		if errs[i] != nil {
			r.stats.refuse(Restore, ReasonOf(errs[i]), 1)
		}
	}
	return errs
}

func signatureRefusal(err error) error {
	reason := ReasonForged
	if errors.Is(err, identity.ErrUnsigned) {
		reason = ReasonUnsigned
	}
	return &Refusal{Reason: reason, Err: err}
}

// Start starts publishing this node's writes through out, and the loop
// that collects tombstones and logs refusals, until Close. Own writes the
// state file held unsigned are signed and published first.
func (r *Replica) Start(out Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.pub.out = out
	if len(r.unsigned) > 0 {
		r.pub.enqueue(r.unsigned...)
		r.unsigned = nil
	}
	r.wg.Go(func() { r.pub.run(ctx) })
	collectEvery := min(max(r.cfg.TombstoneHorizon/100, time.Second), 10*time.Minute)
	r.wg.Go(func() { every(ctx, collectEvery, r.collect) })
	r.wg.Go(func() { every(ctx, LogEvery, func() { r.refusals.log(r.log, r.Counters()) }) })
}

// Close stops publishing (what is queued is published first, best effort),
// flushes and closes the state file. It is idempotent.
func (r *Replica) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed)
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
		r.pub.flush(context.Background())
		err = r.store.Close()
	})
	return err
}

// Self returns this node's id.
func (r *Replica) Self() string { return r.self }

// Store returns the replicated store, for reads and watches. Writes go
// through the replica.
func (r *Replica) Store() *store.Store { return r.store }

func (r *Replica) nowMS() int64 { return r.clock.Now().UnixMilli() }

// SetPolicy replaces the configured write policy (a config reload).
func (r *Replica) SetPolicy(p Policy) { r.policy.Store(&p) }

// Policy returns the configured write policy.
func (r *Replica) Policy() Policy { return *r.policy.Load() }

// SetLimits replaces the entry and message bounds (a config reload).
func (r *Replica) SetLimits(l Limits) { r.limits.Store(&l) }

// Write is the local path: it stamps d with this node's clock, admits it
// like any delta (bounds, write policy: a write peers would refuse is never
// kept), merges it into the store and queues it for signing and
// publishing. It returns the stamped delta and whether it changed the
// store. A write over a bound fails with an error wrapping ErrLimit.
func (r *Replica) Write(d crdt.Delta) (crdt.Delta, bool, error) {
	return r.WriteIf(d, nil)
}

// WriteIf is Write, made only if cond, called with the key's entry as it
// is at the instant of the write (no delta is merged in between), returns
// nil; its error is returned as is. A kernel claim uses it to claim only a
// kernel still free, whatever arrived since it looked.
func (r *Replica) WriteIf(d crdt.Delta, cond func(cur crdt.Entry) error) (crdt.Delta, bool, error) {
	if cond == nil {
		return r.writeFrom(d.Key, false, func(crdt.Entry) (crdt.Delta, error) { return d, nil })
	}
	return r.writeFrom(d.Key, true, func(cur crdt.Entry) (crdt.Delta, error) { return d, cond(cur) })
}

// WriteFrom is Write of the delta that next makes from the key's entry as
// it is at the instant of the write (no delta is merged in between); next's
// error is returned as is, and nothing is written. A kv put uses it to
// write the version after the one it replaces, and to check --if-version.
func (r *Replica) WriteFrom(key string, next func(cur crdt.Entry) (crdt.Delta, error)) (crdt.Delta, bool, error) {
	return r.writeFrom(key, true, next)
}

// writeFrom is WriteFrom; without needCur, next gets the zero entry (a
// plain write need not read the store).
func (r *Replica) writeFrom(key string, needCur bool, next func(cur crdt.Entry) (crdt.Delta, error)) (crdt.Delta, bool, error) {
	select {
	case <-r.closed:
		return crdt.Delta{Key: key}, false, ErrStopped
	default:
	}
	r.mu.Lock()
	var cur crdt.Entry
	if needCur {
		cur, _ = r.store.Get(key)
	}
	d, err := next(cur)
	if err != nil {
		r.mu.Unlock()
		return d, false, err
	}
	d.Key = key
	if err := r.limits.Load().check(d); err != nil {
		r.mu.Unlock()
		r.stats.refuse(Local, ReasonLimit, 1)
		return d, false, fmt.Errorf("refused: %w: %w", ErrLimit, err)
	}
	wall := r.nowMS()
	st, err := r.stamp(wall)
	if err != nil {
		r.mu.Unlock()
		return d, false, err
	}
	d.Stamp, d.Proof = st, crdt.Proof{}
	// Callers set Expiry as wall clock + TTL, but every node judges an
	// expiry against the write's stamp. The HLC can run ahead of this
	// host's wall clock (it observed a peer ahead of us, or restarted from
	// a reservation made before the clock was set back): then the TTL
	// counts from the stamp, or a lease could expire before its own stamp
	// and be refused by every peer while we keep it.
	if ahead := st.HLC.WallMS() - wall; d.Expiry != 0 && ahead > 0 {
		d.Expiry += ahead
	}
	err = r.policy.Load().check(d, *r.limits.Load())
	if err != nil {
		r.mu.Unlock()
		r.stats.refuse(Local, ReasonOf(err), 1)
		if rf := (*Refusal)(nil); errors.As(err, &rf) && rf.Reason == ReasonLimit {
			return d, false, fmt.Errorf("refused: %w: %w", ErrLimit, rf.Err)
		}
		return d, false, fmt.Errorf("replica: refusing to write a delta peers would reject: %w", err)
	}
	changed := len(r.store.Apply(d)) > 0
	r.mu.Unlock()
	if changed {
		r.stats.applied[Local].Add(1)
		r.pub.enqueue(d)
		if r.deps.Applied != nil {
			r.deps.Applied(Local, []crdt.Delta{d}, wall)
		}
	} else {
		r.stats.stale[Local].Add(1)
	}
	return d, changed, nil
}

// stamp issues the next local stamp. Before it issues one past the durable
// reservation it extends the reservation, so stamps survive kill -9.
// Called with r.mu held.
func (r *Replica) stamp(wall int64) (crdt.Stamp, error) {
	h := r.hlc.Now(wall)
	if h.WallMS() >= r.reserved-reserveAhead/5 {
		next := h.WallMS() + reserveAhead
		if err := r.store.ReserveHLC(crdt.MakeHLC(next, 0)); err != nil {
			return crdt.Stamp{}, fmt.Errorf("replica: reserve clock: %w", err)
		}
		r.reserved = next
	}
	return crdt.Stamp{HLC: h, Node: r.self}, nil
}

// Gossip is the gossip validator's work: it decodes a message received on
// topic, admits every delta, and applies them, returning nil; or it
// refuses the whole message and returns a *Refusal (Ignore set when the
// sender need not be dishonest). A message from this node itself is not
// passed here.
func (r *Replica) Gossip(topic string, data []byte) error {
	ds, err := wire.Decode(data, r.limits.Load().wire())
	if err != nil {
		reason := ReasonUndecodable
		switch {
		case errors.Is(err, wire.ErrVersion):
			reason = ReasonVersion
		case errors.Is(err, wire.ErrLimit):
			reason = ReasonLimit
		}
		r.stats.refuse(Gossip, reason, 1)
		return &Refusal{Reason: reason, Err: err}
	}
	for _, d := range ds {
		if crdt.NamespaceOf(d.Key) != crdt.Namespace(topic) {
			r.stats.refuse(Gossip, ReasonWrongTopic, uint64(len(ds)))
			return refuse(ReasonWrongTopic, "key %q on topic %q", d.Key, topic)
		}
	}
	_, errs := r.ingest(Gossip, ds, true)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Merge is anti-entropy's State.Merge: it admits each delta on its own,
// applies those admitted and returns how many changed the state.
func (r *Replica) Merge(ds []crdt.Delta) int {
	changed, _ := r.ingest(AntiEntropy, ds, false)
	return changed
}

// Digest is anti-entropy's State.Digest: the store keeps it.
func (r *Replica) Digest(before crdt.HLC) digest.Digest { return r.store.Digest(before) }

// Entries is anti-entropy's State.Entries, in no order.
func (r *Replica) Entries(prefix string) []crdt.Entry { return r.store.ListUnordered(prefix) }

// ingest admits ds from a peer and applies what it admits: limits, the
// signer, the write policy, then, one batch at a time, the clock-skew
// bound, the HLC and the merge. With whole set (gossip), one
// refused delta refuses them all and nothing is applied. It returns how
// many deltas changed the state and one error per delta (a *Refusal).
func (r *Replica) ingest(src Source, ds []crdt.Delta, whole bool) (int, []error) {
	now := r.nowMS()
	errs := make([]error, len(ds))
	lim := r.limits.Load()
	for i, d := range ds {
		if err := lim.check(d); err != nil {
			errs[i] = &Refusal{Reason: ReasonLimit, Err: err}
		}
	}
	verified := r.deps.Verifier.Verify(ds)
	pol := r.policy.Load()
	for i, d := range ds {
		switch {
		case errs[i] != nil:
		case verified[i] != nil:
			errs[i] = signatureRefusal(verified[i])
		default:
			errs[i] = pol.check(d, *lim)
		}
	}
	if whole && r.refuseAll(src, errs) {
		return 0, errs
	}

	maxSkew := r.cfg.MaxSkew.Milliseconds()
	r.mu.Lock()
	ok := ds[:0:0]
	for i, d := range ds {
		if errs[i] != nil {
			continue
		}
		if err := crdt.CheckSkew(d.Stamp.HLC, now, maxSkew); err != nil {
			errs[i] = &Refusal{Reason: ReasonClockSkew, Ignore: true, Err: fmt.Errorf("from %s: %w", d.Stamp.Node, err)}
			continue
		}
		ok = append(ok, d)
	}
	if whole && r.refuseAll(src, errs) {
		r.mu.Unlock()
		return 0, errs
	}
	for _, d := range ok {
		_ = r.hlc.Observe(d.Stamp.HLC, now, maxSkew) // checked above
	}
	changed := r.store.Apply(ok...)
	r.mu.Unlock()

	if !whole {
		for _, err := range errs {
			if err != nil {
				r.stats.refuse(src, ReasonOf(err), 1)
			}
		}
	}
	r.stats.applied[src].Add(uint64(len(changed)))
	r.stats.stale[src].Add(uint64(len(ok) - len(changed)))
	for _, d := range changed {
		if i := nsIndex(crdt.NamespaceOf(d.Key)); i >= 0 {
			r.stats.in[i].Add(1)
		}
		if src == Gossip {
			r.delays.add(now - d.Stamp.HLC.WallMS())
		}
	}
	if src == Gossip && len(ok) > 0 {
		// Gossip brings writes fresh from their writer (anti-entropy may
		// bring old ones): one far behind our clock says ours is ahead.
		r.PeerClock(ok[len(ok)-1].Stamp.Node, ok[len(ok)-1].Stamp.HLC.WallMS(), now)
	}
	if len(changed) > 0 && r.deps.Applied != nil {
		r.deps.Applied(src, changed, now)
	}
	return len(changed), errs
}

// refuseAll reports whether any of errs is set; if so, it counts the
// first one's reason once per delta, the whole set being refused for it.
func (r *Replica) refuseAll(src Source, errs []error) bool {
	for _, err := range errs {
		if err != nil {
			r.stats.refuse(src, ReasonOf(err), uint64(len(errs)))
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
			return true
		}
	}
	return false
}

// PeerClock is a peer's fresh word of its clock (a write's stamp just
// gossiped, the send time of a probe): peerMS, received at nowMS. When it
// is further behind our clock than max_skew, it is probably our clock that
// is ahead, and peers are refusing our writes: that is logged, at most
// once per LogEvery.
func (r *Replica) PeerClock(peer string, peerMS, nowMS int64) {
	behind := nowMS - peerMS
	if peer == r.self || behind <= r.cfg.MaxSkew.Milliseconds() {
		return
	}
	if last := r.clockWarn.Load(); nowMS-last < LogEvery.Milliseconds() || !r.clockWarn.CompareAndSwap(last, nowMS) {
		return
	}
	r.log.Warn("this node's clock looks ahead of its peers: they reject our writes stamped beyond max_skew; fix NTP",
		"peer", peer, "ahead_by", (time.Duration(behind) * time.Millisecond).Round(100*time.Millisecond), "max_skew", r.cfg.MaxSkew)
}

// GossipDelayP99 returns the 99th percentile of recent gossip delays
// (receive time minus stamp) and how many samples it rests on.
func (r *Replica) GossipDelayP99() (time.Duration, int) { return r.delays.p99() }

// Cutoff is the cutoff of a periodic anti-entropy exchange that runs every
// interval: records stamped after it are likely still on their way by
// gossip (max(2 s, 3 × the p99 gossip delay), at most interval), rounded
// down to a second (digest.Cutoff) so that the store answers it from the
// digest it keeps.
func (r *Replica) Cutoff(interval time.Duration) crdt.HLC {
	p99, _ := r.delays.p99()
	lag := min(max(cutoffMin, 3*p99), interval)
	return digest.Cutoff(crdt.MakeHLC(r.nowMS()-lag.Milliseconds(), math.MaxUint16))
}

// Counters returns what every path brought since the replica opened.
func (r *Replica) Counters() map[Source]PathCounters {
	out := make(map[Source]PathCounters, nSources)
	for _, s := range Sources {
		out[s] = r.stats.path(s)
	}
	return out
}

// AppliedIn returns, per namespace (crdt.Namespaces order), the deltas
// from peers that changed the state.
func (r *Replica) AppliedIn() []uint64 {
	out := make([]uint64, len(r.stats.in))
	for i := range out {
		out[i] = r.stats.in[i].Load()
	}
	return out
}

// Published returns, per namespace (crdt.Namespaces order), the local
// deltas published, and in all the messages published and the deltas
// whose publish failed.
func (r *Replica) Published() (deltas []uint64, messages, failed uint64) {
	deltas = make([]uint64, len(crdt.Namespaces))
	for i := range deltas {
		deltas[i] = r.pub.sentNS[i].Load()
	}
	return deltas, r.pub.messages.Load(), r.pub.failed.Load()
}

// markRunning records that the replica is running now.
func (r *Replica) markRunning() error {
	if err := r.store.SetMeta(MetaLastRunning, binary.BigEndian.AppendUint64(nil, uint64(r.nowMS()))); err != nil {
		return fmt.Errorf("replica: record last running time: %w", err)
	}
	return nil
}

// collect drops tombstones and expired entries older than the horizon
// (lease records need no collection: merges drop those that cannot
// matter), and records that the replica is running.
func (r *Replica) collect() {
	if n := r.store.Collect(r.nowMS(), r.cfg.TombstoneHorizon.Milliseconds()); n > 0 {
		r.log.Info("collected old tombstones and expired entries", "removed", n)
	}
	if err := r.markRunning(); err != nil {
		r.log.Warn("mark running", "err", err)
	}
}

// Backup writes a consistent snapshot of the state file (see
// store.Store.Backup), recording first that the replica runs now.
func (r *Replica) Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := r.markRunning(); err != nil {
		return 0, err
	}
	return r.store.Backup(begin)
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
