// Package membership is rumor's failure detector, after SWIM and Lifeguard
// (hashicorp/memberlist), on the libp2p host rumor already has.
//
// Each node probes a few of its connected peers per heartbeat, asks other
// peers to probe one that does not answer, and accuses it only when no one
// reaches it: it writes node/<target>/<accuser> with the target's
// incarnation. Every node that learns of an accusation holds the target
// suspect; the target refutes by announcing a higher incarnation in its own
// entry node/<id>; a suspicion that is not refuted in time (sooner, the
// more nodes independently accuse) makes the target dead. Only changes
// travel: an idle cluster sends a few probes per node per heartbeat
// whatever its size, where a heartbeat gossiped to every node costs each
// node N messages a second.
//
// Accusations and member entries are ordinary signed CRDT registers, so
// anti-entropy carries them to nodes that missed them (a new node, the
// other side of a healed partition), and a target learns it is accused
// however the accusation reaches it. Every verdict is judged on local
// time: a peer's clock skew cannot make it look alive or dead.
//
// The Table is pure: time comes in as arguments (local Unix milliseconds),
// so it is deterministic and testable without a clock. The Monitor runs it
// over a transport.
package membership

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// State is what this node believes about another.
type State uint8

// The states, in order of increasing doubt.
const (
	Alive State = iota + 1
	Suspect
	Dead
)

var stateNames = [...]string{Alive: "alive", Suspect: "suspect", Dead: "dead"}

// String names the state.
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "unknown"
}

// Config holds the detector's timings.
type Config struct {
	// SuspectAfter bounds one probe: a node that answers neither a direct
	// ping (a third of it) nor the pings other peers send for us (the
	// rest) within it is accused.
	SuspectAfter time.Duration
	// DeadAfter is how long a node accused by one node has to refute
	// before it is dead. Each further independent accuser shortens it, to
	// half of it with Confirmations more (Lifeguard).
	DeadAfter time.Duration
}

// Confirmations is how many accusers beyond the first bring a suspicion's
// timeout down to its minimum, DeadAfter/2 (Lifeguard's K). The minimum
// leaves a live suspect time to hear of the suspicion and refute it even
// when gossip takes a second or more (an overloaded host).
const Confirmations = 3

// DefaultConfig is suspect after a probe unanswered for 1.5 s, dead 4 s
// after one accusation or 2 s after four: a crashed node shows dead
// everywhere within about 4 s of its first missed probe.
func DefaultConfig() Config {
	return Config{SuspectAfter: 1500 * time.Millisecond, DeadAfter: 4 * time.Second}
}

// Validate reports a bad field.
func (c Config) Validate() error {
	if c.SuspectAfter <= 0 || c.DeadAfter <= c.SuspectAfter {
		return fmt.Errorf("membership: need 0 < suspect_after (%v) < dead_after (%v)", c.SuspectAfter, c.DeadAfter)
	}
	return nil
}

// Timeout is how long a suspicion with accusers independent accusers runs
// before the suspect is dead: DeadAfter with one, falling with the log of
// their number to DeadAfter/2 at 1+Confirmations.
func (c Config) Timeout(accusers int) time.Duration {
	hi, lo := float64(c.DeadAfter), float64(c.DeadAfter)/2
	extra := float64(max(accusers-1, 0))
	t := hi - (hi-lo)*math.Log(extra+1)/math.Log(Confirmations+1)
	return time.Duration(max(t, lo))
}

// Peer is one node's entry in the table.
type Peer struct {
	ID string
	// Inc is the highest incarnation of the node known here.
	Inc uint64
	// Heard is the local time (Unix ms) the node last answered a probe of
	// ours (or of another peer we asked); 0 if never.
	Heard int64
	State State
	// Since is the local time the node entered State.
	Since int64
	// Accusers counts the nodes accusing its incarnation Inc.
	Accusers int
}

// Change is a state transition reported by the table.
type Change struct {
	ID       string
	From, To State
}

// String formats the change for logs.
func (c Change) String() string { return c.ID + ": " + c.From.String() + " -> " + c.To.String() }

// accusation is one accuser's word about a node.
type accusation struct {
	inc  uint64
	dead bool
}

type member struct {
	Peer
	accused map[string]accusation // by accuser
	// suspInc and suspSince: the incarnation this node first learnt was
	// accused, and when; a suspicion times out from then.
	suspInc   uint64
	suspSince int64
	// aliveAt is the last local time the node was alive here.
	aliveAt int64
}

// Table is the member table of one node. It is safe for concurrent use.
type Table struct {
	cfg   Config
	self  string
	mu    sync.Mutex
	peers map[string]*member
}

// New returns a table for node self, which is always alive.
func New(self string, cfg Config) *Table {
	return &Table{cfg: cfg, self: self, peers: make(map[string]*member)}
}

func (t *Table) get(id string, nowMS int64) *member {
	m, ok := t.peers[id]
	if !ok {
		m = &member{Peer: Peer{ID: id, State: 0, Since: nowMS}, aliveAt: nowMS}
		t.peers[id] = m
	}
	return m
}

// Announced records id's own entry at incarnation inc, received at nowMS.
// It returns the change it makes, if any (a new node's From is 0).
func (t *Table) Announced(id string, inc uint64, nowMS int64) (Change, bool) {
	return t.update(id, nowMS, func(m *member) { m.Inc = max(m.Inc, inc) })
}

// Answered records that id answered a probe of ours at nowMS, at
// incarnation inc (0: the answer came through another peer, which cannot
// speak for the node's incarnation).
func (t *Table) Answered(id string, inc uint64, nowMS int64) (Change, bool) {
	return t.update(id, nowMS, func(m *member) {
		m.Inc = max(m.Inc, inc)
		m.Heard = max(m.Heard, nowMS)
	})
}

// Accused records accuser's accusation of target at incarnation inc
// (dead: its suspicion ran out), learnt at nowMS.
func (t *Table) Accused(target, accuser string, inc uint64, dead bool, nowMS int64) (Change, bool) {
	return t.update(target, nowMS, func(m *member) {
		if m.accused == nil {
			m.accused = make(map[string]accusation)
		}
		if a, ok := m.accused[accuser]; ok && (a.inc > inc || (a.inc == inc && a.dead && !dead)) {
			return // an older word of the same accuser
		}
		m.accused[accuser] = accusation{inc: inc, dead: dead}
	})
}

func (t *Table) update(id string, nowMS int64, f func(*member)) (Change, bool) {
	if id == t.self {
		return Change{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.get(id, nowMS)
	f(m)
	return t.derive(m, nowMS)
}

// derive sets m's state from what is known of it at nowMS.
func (t *Table) derive(m *member, nowMS int64) (Change, bool) {
	var top uint64
	accusers, dead := 0, false
	for _, a := range m.accused {
		if a.inc < m.Inc || a.inc < top {
			continue // refuted, or of an older incarnation than another
		}
		if a.inc > top {
			top, accusers, dead = a.inc, 0, false
		}
		accusers++
		dead = dead || a.dead
	}
	s := Alive
	if accusers > 0 {
		if m.suspInc != top {
			m.suspInc, m.suspSince = top, nowMS
		}
		m.Inc = top
		s = Suspect
		if dead || time.Duration(nowMS-m.suspSince)*time.Millisecond >= t.cfg.Timeout(accusers) {
			s = Dead
		}
	}
	m.Accusers = accusers
	if s == Alive || m.State == Alive {
		m.aliveAt = nowMS
	}
	if s == m.State {
		return Change{}, false
	}
	c := Change{ID: m.ID, From: m.State, To: s}
	m.State, m.Since = s, nowMS
	return c, true
}

// Tick re-derives every node's state at nowMS (suspicions time out) and
// returns the changes, sorted by node id.
func (t *Table) Tick(nowMS int64) []Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Change
	for _, m := range t.peers {
		if c, ok := t.derive(m, nowMS); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// State returns what the table last derived for id: Alive for self, 0 for
// a node never heard of.
func (t *Table) State(id string) State {
	if id == t.self {
		return Alive
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.peers[id]; ok {
		return m.State
	}
	return 0
}

// Get returns id's entry.
func (t *Table) Get(id string) (Peer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.peers[id]
	if !ok {
		return Peer{}, false
	}
	return m.Peer, true
}

// Peers returns a copy of the table (without self), sorted by id.
func (t *Table) Peers() []Peer {
	t.mu.Lock()
	out := make([]Peer, 0, len(t.peers))
	for _, m := range t.peers {
		out = append(out, m.Peer)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Unreachable counts, among the peers alive here within the last
// windowMS, how many are now suspect or dead. Peers lost for longer than
// the window are left out, so nodes that left long ago do not count as
// lost contact.
func (t *Table) Unreachable(nowMS, windowMS int64) (lost, seen int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.peers {
		if nowMS-m.aliveAt > windowMS {
			continue
		}
		seen++
		if m.State != Alive {
			lost++
		}
	}
	return lost, seen
}

// Count returns how many peers are in each state.
func (t *Table) Count() map[State]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[State]int)
	for _, m := range t.peers {
		out[m.State]++
	}
	return out
}
