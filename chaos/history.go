// Package chaos records what a Jepsen-style run did to a rumor cluster and
// checks it: the history of client operations with their results and times,
// samples of every agent's kernel leases, and the agents' final states. It
// is pure (no IO, no clock): cmd/rumor-chaos runs the agents, the workload
// and the faults, and hands what it saw to the checks here.
package chaos

import (
	"fmt"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// Outcome is what a client learnt about one operation.
type Outcome string

// Outcomes. An operation that failed definitely changed nothing (the agent
// refused it, or was not there to take it); one whose outcome is unknown may
// or may not have taken effect (a timeout, a connection lost mid-request).
const (
	OK      Outcome = "ok"
	Failed  Outcome = "failed"
	Unknown Outcome = "unknown"
)

// Op is one client operation on one agent.
type Op struct {
	ID    int    `json:"id"`
	Agent int    `json:"agent"`
	Kind  string `json:"kind"` // svc-set, bl-add, kernel-claim, ...
	Key   string `json:"key"`
	// Start and End bound the call, on the test runner's clock.
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome Outcome   `json:"outcome"`
	Err     string    `json:"err,omitempty"`
	// Granted is a kernel claim's verdict.
	Granted bool `json:"granted,omitempty"`
	// Epoch is the lease epoch a kernel operation acted on: the epoch a
	// claim was granted, and that of the renewals and the release of it.
	Epoch uint64 `json:"epoch,omitempty"`
	// Acked is the write an OK operation made, read back from its agent
	// right after the acknowledgement: either the write itself or, if a
	// later write had already superseded it there, that later write. Each
	// must survive in the final state: present, or superseded by a later
	// write.
	Acked *rpc.Record `json:"acked,omitempty"`
}

// Sample is one agent's view of every kernel lease at one instant of a
// sampling round.
type Sample struct {
	Round   int          `json:"round"`
	At      time.Time    `json:"at"`
	Agent   int          `json:"agent"`
	Kernels []rpc.Kernel `json:"kernels"`
}

// Violation is one thing the checks found wrong.
type Violation struct {
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

func (v Violation) String() string { return v.Check + ": " + v.Detail }

// Delta converts a record back to the CRDT's form.
func Delta(r rpc.Record) (crdt.Delta, error) {
	op, ok := crdt.ParseOp(r.Op)
	if !ok {
		return crdt.Delta{}, fmt.Errorf("record %s: unknown op %q", r.Key, r.Op)
	}
	d := crdt.Delta{
		Key: r.Key, Stamp: crdt.Stamp{HLC: crdt.HLC(r.HLC), Node: r.Node}, Op: op,
		Expiry: r.ExpiryMillis, Epoch: r.Epoch, Value: r.Value,
	}
	if r.Task != "" {
		t, ok := crdt.ParseTaskState(r.Task)
		if !ok {
			return crdt.Delta{}, fmt.Errorf("record %s: unknown task state %q", r.Key, r.Task)
		}
		d.Task = t
	}
	return d, nil
}
