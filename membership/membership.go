// Package membership is rumor's failure detector: it tracks when each node
// was last heard and derives alive / suspect / dead from that. Time comes
// in as arguments (local wall milliseconds), so the logic is deterministic
// and testable without a clock; the caller feeds heartbeats and ticks.
//
// "Last heard" is always the local receive time, never the sender's stamp,
// so a peer's clock skew cannot make it look alive or dead.
package membership

import (
	"fmt"
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
	// SuspectAfter: a node unheard this long is suspect.
	SuspectAfter time.Duration
	// DeadAfter: a node unheard this long is dead.
	DeadAfter time.Duration
}

// DefaultConfig is suspect after 3 s and dead after 4 s, for 1 s heartbeats:
// a crashed node shows dead everywhere about 4 s after its last heartbeat
// (memberlist's LAN profile takes about as long at N=10).
func DefaultConfig() Config {
	return Config{SuspectAfter: 3 * time.Second, DeadAfter: 4 * time.Second}
}

// Validate reports a bad field.
func (c Config) Validate() error {
	if c.SuspectAfter <= 0 || c.DeadAfter <= c.SuspectAfter {
		return fmt.Errorf("membership: need 0 < suspect_after (%v) < dead_after (%v)", c.SuspectAfter, c.DeadAfter)
	}
	return nil
}

// Peer is one node's entry in the table.
type Peer struct {
	ID string
	// Heard is the local time (Unix ms) the node was last heard.
	Heard int64
	State State
	// hinted is set when the transport lost its connection to the node; it
	// makes an otherwise alive node suspect until it is heard again.
	hinted bool
}

// Change is a state transition reported by Heard or Tick.
type Change struct {
	ID       string
	From, To State
}

// String formats the change for logs.
func (c Change) String() string { return c.ID + ": " + c.From.String() + " -> " + c.To.String() }

// Table is the peer table. It is safe for concurrent use.
type Table struct {
	cfg   Config
	self  string
	mu    sync.Mutex
	peers map[string]*Peer
}

// New returns a table for node self, which is always alive.
func New(self string, cfg Config) *Table {
	return &Table{cfg: cfg, self: self, peers: make(map[string]*Peer)}
}

// Heard records that id was heard at nowMS. It returns the change if the
// node was new, suspect or dead (a new node's From is 0).
func (t *Table) Heard(id string, nowMS int64) (Change, bool) {
	if id == t.self {
		return Change{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		p = &Peer{ID: id}
		t.peers[id] = p
	}
	p.Heard = max(p.Heard, nowMS)
	p.hinted = false
	if p.State == Alive {
		return Change{}, false
	}
	c := Change{ID: id, From: p.State, To: Alive}
	p.State = Alive
	return c, true
}

// Tick re-derives every node's state at nowMS and returns the changes,
// sorted by node id.
func (t *Table) Tick(nowMS int64) []Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Change
	for _, p := range t.peers {
		if s := t.stateAt(p, nowMS); s != p.State {
			out = append(out, Change{ID: p.ID, From: p.State, To: s})
			p.State = s
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (t *Table) stateAt(p *Peer, nowMS int64) State {
	switch silent := time.Duration(nowMS-p.Heard) * time.Millisecond; {
	case silent >= t.cfg.DeadAfter:
		return Dead
	case silent >= t.cfg.SuspectAfter || p.hinted:
		return Suspect
	default:
		return Alive
	}
}

// Disconnected is a hint from the transport that the connection to id is
// gone: an alive node becomes suspect at once. It is only a hint: the node
// turns dead only after DeadAfter of silence, and alive again as soon as
// it is heard (over another path, or after a reconnect).
func (t *Table) Disconnected(id string) (Change, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok || p.State != Alive {
		return Change{}, false
	}
	p.hinted, p.State = true, Suspect
	return Change{ID: id, From: Alive, To: Suspect}, true
}

// State returns what the table last derived for id: Alive for self, 0 for
// a node never heard.
func (t *Table) State(id string) State {
	if id == t.self {
		return Alive
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		return p.State
	}
	return 0
}

// Peers returns a copy of the table (without self), sorted by id.
func (t *Table) Peers() []Peer {
	t.mu.Lock()
	out := make([]Peer, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, *p)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Unreachable counts, among the peers heard within the last windowMS, how
// many are now suspect or dead. Peers silent for longer than the window
// are left out, so nodes that left long ago do not count as lost contact.
func (t *Table) Unreachable(nowMS, windowMS int64) (lost, seen int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.peers {
		if nowMS-p.Heard > windowMS {
			continue
		}
		seen++
		if p.State != Alive {
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
	for _, p := range t.peers {
		out[p.State]++
	}
	return out
}
