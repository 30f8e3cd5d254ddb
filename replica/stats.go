package replica

import (
	"slices"
	"sync/atomic"

	"github.com/rumor-dev/rumor/crdt"
)

// Source is the path a delta came by. Every path enters the same ingest
// function; the source only names it in counters and logs.
type Source uint8

// The paths.
const (
	Local       Source = iota // a write of this agent's local API or of the agent itself
	Gossip                    // a peer's gossip message, whoever relayed it
	AntiEntropy               // an anti-entropy exchange, whoever answered it
	Restore                   // the state file, read at start (a backup restored, say)
	nSources
)

var sourceNames = [...]string{Local: "local", Gossip: "gossip", AntiEntropy: "anti-entropy", Restore: "restore"}

// String names the path.
func (s Source) String() string {
	if s < nSources {
		return sourceNames[s]
	}
	return "unknown"
}

// Sources lists every path.
var Sources = []Source{Local, Gossip, AntiEntropy, Restore}

// PathCounters are what one path brought since the agent started.
type PathCounters struct {
	// Applied counts deltas that changed the local state.
	Applied uint64
	// Stale counts deltas admitted that changed nothing: duplicates,
	// replays of old writes, writes that lost to a later one.
	Stale uint64
	// Refused counts deltas refused, by reason (every reason present).
	Refused map[string]uint64
}

// counters are the replica's, updated lock-free on the ingest path.
type counters struct {
	applied, stale [nSources]atomic.Uint64
	refused        [nSources][]atomic.Uint64 // by index in Reasons
	in             []atomic.Uint64           // remote deltas applied, by index in crdt.Namespaces
}

func newCounters() *counters {
	c := &counters{in: make([]atomic.Uint64, len(crdt.Namespaces))}
	for s := range c.refused {
		c.refused[s] = make([]atomic.Uint64, len(Reasons))
	}
	return c
}

func (c *counters) refuse(src Source, reason string, n uint64) {
	if i := slices.Index(Reasons, reason); i >= 0 {
		c.refused[src][i].Add(n)
	}
}

func (c *counters) path(src Source) PathCounters {
	p := PathCounters{Applied: c.applied[src].Load(), Stale: c.stale[src].Load(), Refused: make(map[string]uint64, len(Reasons))}
	for i, r := range Reasons {
		p.Refused[r] = c.refused[src][i].Load()
	}
	return p
}
