// Package lease holds the rules of this node's kernel leases: whether a
// claim may be made and at which epoch (Decide), how long a claimant waits
// for competing claims (SettleWindow), and a Holder, the state machine of
// the leases this node won: records in, Step(now) out (renewals to write,
// leases to release, events to report). It does no IO, starts no goroutine
// and reads no clock: time comes in as arguments, so every rule is tested
// exhaustively with plain values. Who holds a kernel is decided by
// crdt.Resolve over the kernel's records, the same on every node.
package lease

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/crdt"
)

// Kind is what happened to a lease of this node.
type Kind string

// The kinds of lease events.
const (
	Granted  Kind = "granted"  // this node's claim won
	Renewed  Kind = "renewed"  // this node extended its lease
	Released Kind = "released" // this node let the lease go
	Expired  Kind = "expired"  // the lease ran out without renewal
	Lost     Kind = "lost"     // another claim won (after a partition healed, say): stop using the kernel
	Suspect  Kind = "suspect"  // this node is cut off from most of the cluster: the other side may grant the kernel too
)

// Event reports one change to a lease this node held.
type Event struct {
	Kind  Kind
	Lease crdt.Lease
}

// Action is what a claim should do.
type Action uint8

// The actions of Decide.
const (
	// Claim: write a claim for Decision.Epoch, wait the settle window, and
	// see whether it won.
	Claim Action = iota + 1
	// Renew: this node holds the lease already; renew it.
	Renew
	// Deny: another node holds a live lease. If Decision.WaitMS is
	// positive, that lease was granted less than a settle window ago, and
	// a claim with a smaller stamp may still be on its way: wait that
	// long before naming the winner.
	Deny
)

// Decision is Decide's verdict.
type Decision struct {
	Action Action
	Epoch  uint64 // the epoch to claim (Claim)
	WaitMS int64  // how long to wait before reporting a denial (Deny)
}

// Decide says what a claim by self should do, given the kernel's lease as
// resolved now (nowMS, wall ms). Another node's lease counts as live until
// its expiry plus maxSkewMS, the clock-skew margin: the holder may run
// that far behind us. A claim takes the epoch after the highest any record
// names, so epochs never go backwards.
func Decide(l crdt.Lease, self string, nowMS, maxSkewMS, settleMS int64) Decision {
	switch {
	case l.Holder == self && l.Live(nowMS):
		return Decision{Action: Renew, Epoch: l.Epoch}
	case l.Holder != "" && !l.Released && nowMS < l.Expiry+maxSkewMS:
		return Decision{Action: Deny, WaitMS: max(l.Granted.HLC.WallMS()+settleMS-nowMS, 0)}
	}
	return Decision{Action: Claim, Epoch: l.MaxEpoch + 1}
}

// SettleWindow is how long a claimant waits for competing claims: fixed if
// set, else 3 × the measured p99 gossip delay within [min, max].
func SettleWindow(fixed, p99, min_, max_ time.Duration) time.Duration {
	if fixed > 0 {
		return fixed
	}
	return min(max(3*p99, min_), max_)
}

// held is a lease this node won and has not given up.
type held struct {
	lease   crdt.Lease
	ttl     int64 // ms, the claim's length; renewals extend by the same
	renewed int64 // wall ms of the last renewal (or the grant)
	suspect bool  // a suspect event was sent for the current episode
	// auto: Step renews the lease every ttl/3. Otherwise only its
	// client's renewals keep it (a session's keepalives, kernel renew),
	// and Step reports it expired when they stop.
	auto bool
}

// NextRenewal returns when (wall ms) the first lease Step renews on its
// own falls due: ok is false when none does.
func (h *Holder) NextRenewal() (atMS int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.held {
		if due := x.renewed + x.ttl/3; x.auto && (!ok || due < atMS) {
			atMS, ok = due, true
		}
	}
	return atMS, ok
}

// Renewal is a renewal record a holder must write.
type Renewal struct {
	Kernel string // the kernel's key
	Epoch  uint64
	Expiry int64 // wall ms
	TTL    int64 // ms
}

// Step is what a Holder's Step asks of the node.
type Step struct {
	// Renew lists the leases due for renewal (every ttl/3).
	Renew []Renewal
	// Release lists the leases to release at once: self-fencing, this
	// node being cut off from most of the cluster.
	Release []crdt.Lease
	// Events lists what happened to the leases held, in key order.
	Events []Event
}

// Holder tracks the leases this node holds. It is safe for concurrent use.
type Holder struct {
	self string
	mu   sync.Mutex
	held map[string]*held // by kernel key
}

// NewHolder returns the holder of node self, holding nothing.
func NewHolder(self string) *Holder {
	return &Holder{self: self, held: make(map[string]*held)}
}

// Granted records l, just won by this node's claim of ttl ms, and returns
// the event; with auto, Step renews it every ttl/3. The lease's life counts
// from its claim's stamp, not from now: a claim judged late (a long settle
// window, a key exchange that waited for a silent peer) is renewed at the
// next Step if a third of its TTL has passed since it was made.
func (h *Holder) Granted(l crdt.Lease, ttl, nowMS int64, auto bool) Event {
	h.mu.Lock()
	h.held[l.Kernel] = &held{lease: l, ttl: ttl, renewed: min(l.Granted.HLC.WallMS(), nowMS), auto: auto}
	h.mu.Unlock()
	return Event{Kind: Granted, Lease: l}
}

// Track makes sure l, a live lease of this node, is held (renewed every
// ttl/3 if auto): a lease this node held already, maybe since before a
// restart. A lease held already keeps its state.
func (h *Holder) Track(l crdt.Lease, ttl, nowMS int64, auto bool) {
	h.mu.Lock()
	if _, ok := h.held[l.Kernel]; !ok {
		h.held[l.Kernel] = &held{lease: l, ttl: ttl, renewed: nowMS, auto: auto}
	}
	h.mu.Unlock()
}

// Leases returns the leases this node holds, in key order.
func (h *Holder) Leases() []crdt.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]crdt.Lease, 0, len(h.held))
	for _, k := range slices.Sorted(maps.Keys(h.held)) {
		out = append(out, h.held[k].lease)
	}
	return out
}

// Renewed records that this node renewed its lease on key, now l, with
// ttl, and returns the event.
func (h *Holder) Renewed(key string, l crdt.Lease, ttl, nowMS int64) Event {
	h.mu.Lock()
	if x, ok := h.held[key]; ok {
		x.lease, x.ttl, x.renewed = l, ttl, nowMS
	}
	h.mu.Unlock()
	return Event{Kind: Renewed, Lease: l}
}

// Released forgets l, which this node released, and returns the event.
func (h *Holder) Released(l crdt.Lease) Event {
	h.mu.Lock()
	delete(h.held, l.Kernel)
	h.mu.Unlock()
	return Event{Kind: Released, Lease: l}
}

// Resume takes back the leases this node held before a restart, from the
// kernels' leases as resolved from its state: it renews those auto says to
// renew again, holds the others until they run out, and the next Step
// reports any that ran out meanwhile expired. It returns the leases it
// took back.
func (h *Holder) Resume(ls []crdt.Lease, nowMS int64, auto func(crdt.Lease) bool) []crdt.Lease {
	var out []crdt.Lease
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range ls {
		if l.Holder != h.self || l.Released {
			continue
		}
		from := l.Granted.HLC.WallMS()
		if !l.Renewed.IsZero() {
			from = l.Renewed.HLC.WallMS()
		}
		h.held[l.Kernel] = &held{lease: l, ttl: max(l.Expiry-from, 1), renewed: min(from, nowMS), auto: auto(l)}
		out = append(out, l)
	}
	return out
}

// Held returns how many leases this node holds.
func (h *Holder) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// Step judges every lease held at nowMS against current, the kernel's lease
// as resolved from the node's records now: a lease another claim won is
// lost, one released elsewhere (by a self-fence of this node) released,
// one past its expiry expired; those are forgotten. While partitioned
// (cut off from more than half of the nodes recently seen) every lease
// gets one suspect event per episode and, with selfFence, is to be
// released at once. The others that renew automatically are due for
// renewal every ttl/3.
func (h *Holder) Step(nowMS int64, current func(key string) crdt.Lease, partitioned, selfFence bool) Step {
	var st Step
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, key := range slices.Sorted(maps.Keys(h.held)) {
		x := h.held[key]
		l := current(key)
		var kind Kind
		switch {
		case l.Holder != h.self || l.Epoch != x.lease.Epoch || l.Granted != x.lease.Granted:
			kind = Lost
		case l.Released:
			kind = Released
		case !l.Live(nowMS):
			kind = Expired
		}
		if kind != "" {
			delete(h.held, key)
			st.Events = append(st.Events, Event{Kind: kind, Lease: l})
			continue
		}
		if !partitioned {
			x.suspect = false
		} else {
			if !x.suspect {
				x.suspect = true
				st.Events = append(st.Events, Event{Kind: Suspect, Lease: l})
			}
			if selfFence {
				st.Release = append(st.Release, l)
				continue
			}
		}
		if x.auto && nowMS-x.renewed >= x.ttl/3 {
			st.Renew = append(st.Renew, Renewal{Kernel: key, Epoch: l.Epoch, Expiry: nowMS + x.ttl, TTL: x.ttl})
		}
	}
	return st
}
