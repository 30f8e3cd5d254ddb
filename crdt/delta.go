package crdt

import (
	"bytes"
	"cmp"
	"strconv"
	"strings"
)

// Stamp orders writes: HLC first, node id as the tie break. Stamps are
// totally ordered and a node never issues the same stamp twice.
type Stamp struct {
	HLC  HLC
	Node string
}

// Compare returns -1, 0 or +1 as s orders before, equal to or after o.
func (s Stamp) Compare(o Stamp) int {
	if c := cmp.Compare(s.HLC, o.HLC); c != 0 {
		return c
	}
	return strings.Compare(s.Node, o.Node)
}

// Less reports whether s orders before o.
func (s Stamp) Less(o Stamp) bool { return s.Compare(o) < 0 }

// IsZero reports whether s is the zero stamp.
func (s Stamp) IsZero() bool { return s.HLC == 0 && s.Node == "" }

// Op is what a delta does to its key.
type Op uint8

// The operations. Registers (svc, node, task, bl) take Put and Delete; in
// the bl namespace Put adds the id to the list and Delete removes it.
// Kernel leases take Claim, Renew and Release.
const (
	OpPut Op = iota + 1
	OpDelete
	OpClaim
	OpRenew
	OpRelease
)

var opNames = [...]string{OpPut: "put", OpDelete: "delete", OpClaim: "claim", OpRenew: "renew", OpRelease: "release"}

// String names the operation.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp is the inverse of Op.String for the known operations.
func ParseOp(s string) (Op, bool) {
	for o, n := range opNames {
		if n != "" && n == s {
			return Op(o), true
		}
	}
	return 0, false
}

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o >= OpPut && o <= OpRelease }

// TaskState is the lifecycle state of a task. States are ranked: a delta
// with a higher rank always wins over a lower one, so a terminal state is
// never undone and a cancel request is not lost to a concurrent "running".
type TaskState uint8

// Task states in rank order; Done, Failed and Cancelled are terminal and rank equal.
const (
	TaskQueued TaskState = iota + 1
	TaskRunning
	TaskCancelRequested
	TaskDone
	TaskFailed
	TaskCancelled
)

var taskStateNames = [...]string{
	TaskQueued: "queued", TaskRunning: "running", TaskCancelRequested: "cancel-requested",
	TaskDone: "done", TaskFailed: "failed", TaskCancelled: "cancelled",
}

// String returns the state's name as the CLI shows it.
func (t TaskState) String() string {
	if int(t) < len(taskStateNames) && taskStateNames[t] != "" {
		return taskStateNames[t]
	}
	return "unknown"
}

// ParseTaskState parses a state name; ok is false for an unknown name.
func ParseTaskState(s string) (TaskState, bool) {
	for i, n := range taskStateNames {
		if n != "" && n == s {
			return TaskState(i), true
		}
	}
	return 0, false
}

// Valid reports whether t is a known state.
func (t TaskState) Valid() bool { return t >= TaskQueued && t <= TaskCancelled }

// Terminal reports whether t is done, failed or cancelled.
func (t TaskState) Terminal() bool { return t >= TaskDone && t <= TaskCancelled }

// rank orders task states for the merge guard.
func (t TaskState) rank() int {
	if t.Terminal() {
		return int(TaskDone)
	}
	return int(t)
}

// Delta is one replicated write to one key. Its meaning depends on the key's
// namespace (see the package doc).
type Delta struct {
	Key   string
	Stamp Stamp
	Op    Op
	// Expiry is a wall-clock deadline in Unix milliseconds, 0 for none: a
	// bl member's or svc entry's TTL, a lease record's expiry.
	Expiry int64
	// Epoch is a kernel lease's fencing token (lease records only).
	Epoch uint64
	// Task is the task state (task namespace only).
	Task TaskState
	// Value is the entry's payload (see the *Value types), opaque to merges.
	Value []byte
	// Proof ties the delta to its writer's signature. Merges, Equal and
	// the order of writes ignore it: it says who wrote the delta, not what
	// the delta is.
	Proof Proof
}

// Proof ties a delta to its writer's signature: the writer (Stamp.Node)
// signed the hashes of every delta of the batch it published the delta in
// (Cert), and the delta is the Pos'th of them. A proof is checked by
// package identity; crdt only carries it. The zero Proof marks a delta
// that is not signed yet (a local write before its batch is published),
// which no receiver accepts.
type Proof struct {
	Cert *Cert
	Pos  uint16
}

// Signed reports whether p holds a certificate.
func (p Proof) Signed() bool { return p.Cert != nil }

// Cert is a writer's signature over one batch of its deltas: Sig signs
// (see identity) the hash of every delta of the batch, in order. A Cert is
// shared by the deltas of its batch and never modified once made.
type Cert struct {
	Sig    [64]byte
	Hashes [][32]byte
}

// Live reports whether a register delta holds a present, unexpired value at nowMS.
func (d Delta) Live(nowMS int64) bool {
	return d.Op == OpPut && (d.Expiry == 0 || nowMS < d.Expiry)
}

// Equal reports whether d and o are the same write.
func (d Delta) Equal(o Delta) bool {
	return compareContent(d, o) == 0 && d.Key == o.Key && d.Stamp == o.Stamp
}

// compareContent orders deltas with equal stamps by their content, so that
// even two different deltas under one stamp (a bug or a forgery) merge
// deterministically.
func compareContent(a, b Delta) int {
	if c := cmp.Compare(a.Op, b.Op); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Expiry, b.Expiry); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Task, b.Task); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

// Namespace is the first segment of a key.
type Namespace string

// The namespaces rumor replicates.
const (
	NSService   Namespace = "svc"
	NSBlacklist Namespace = "bl"
	NSTask      Namespace = "task"
	NSKernel    Namespace = "kernel"
	NSNode      Namespace = "node"
	// NSWait holds the claims queued for kernels: wait/<kernel>/<waiter>,
	// registers with a TTL that their waiter refreshes.
	NSWait Namespace = "wait"
	// NSKV holds configuration pushed to every host: kv/<path>, registers
	// whose path has one or more segments (/config/app/env/name).
	NSKV Namespace = "kv"
)

// Namespaces lists every namespace, in a fixed order.
var Namespaces = []Namespace{NSService, NSBlacklist, NSTask, NSKernel, NSNode, NSWait, NSKV}

// NamespaceOf returns the namespace of key ("" if key has no '/').
func NamespaceOf(key string) Namespace {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return Namespace(key[:i])
}

// compareWrites orders two register writes to the same key: the greater one
// wins. The order depends on the namespace and is total.
func compareWrites(ns Namespace, a, b Delta) int {
	switch ns {
	case NSBlacklist:
		// Later HLC wins; at an equal HLC a remove beats an add; then node id.
		if c := cmp.Compare(a.Stamp.HLC, b.Stamp.HLC); c != 0 {
			return c
		}
		if ad, bd := a.Op == OpDelete, b.Op == OpDelete; ad != bd {
			if ad {
				return 1
			}
			return -1
		}
	case NSTask:
		if c := cmp.Compare(a.Task.rank(), b.Task.rank()); c != 0 {
			return c
		}
	}
	if c := a.Stamp.Compare(b.Stamp); c != 0 {
		return c
	}
	return compareContent(a, b)
}

// compareRecords orders lease records inside a kernel's set.
func compareRecords(a, b Delta) int {
	if c := a.Stamp.Compare(b.Stamp); c != 0 {
		return c
	}
	return compareContent(a, b)
}

// CompareRecords orders two records of a kernel set the way Entry.Deltas
// holds them: by stamp, then by content. A kernel entry's records are
// strictly increasing in this order.
func CompareRecords(a, b Delta) int { return compareRecords(a, b) }
