package crdt

import "encoding/json"

// ServiceValue is the payload of a svc entry.
type ServiceValue struct {
	Addr   string            `json:"addr,omitempty"`
	Status string            `json:"status"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// MemberValue is the payload of a node entry: what a node says about itself.
// Inc is its incarnation: a node raises it to refute a suspicion about
// itself, and starts each run with a higher one than its last.
type MemberValue struct {
	Addrs   []string `json:"addrs,omitempty"`
	Region  string   `json:"region,omitempty"`
	Version string   `json:"version,omitempty"`
	Inc     uint64   `json:"inc,omitempty"`
}

// SuspectValue is the payload of an accusation node/<target>/<accuser>:
// the accuser found target unreachable at incarnation Inc (Dead: and its
// suspicion ran out without a refutation). A target refutes by announcing
// a higher incarnation; an accusation of an older incarnation is moot.
type SuspectValue struct {
	Inc  uint64 `json:"inc"`
	Dead bool   `json:"dead,omitempty"`
}

// TaskValue is the payload of a task entry. An assigned task names its
// Owner from the start; a queued one (Queue set) has no owner until a
// worker's node takes it, and then carries what the worker needs (Payload)
// and what the queue keeps across attempts (the other fields).
type TaskValue struct {
	Owner  string `json:"owner"`
	Result string `json:"result,omitempty"`
	// Queue is the work queue the task was submitted to ("" for an
	// assigned task).
	Queue string `json:"queue,omitempty"`
	// Payload is the submitter's input for the worker.
	Payload []byte `json:"payload,omitempty"`
	// Priority orders a queue: higher first, then SubmitMS, then the id.
	Priority int `json:"priority,omitempty"`
	// SubmitMS is the wall time of the submission, kept by every attempt.
	SubmitMS int64 `json:"submit_ms,omitempty"`
	// Attempt counts the takes so far; MaxAttempts bounds them (the task
	// fails once an attempt beyond it would be needed).
	Attempt     int `json:"attempt,omitempty"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Epoch is the fencing epoch of the current attempt's lease.
	Epoch uint64 `json:"epoch,omitempty"`
}

// WaitValue is the payload of a wait entry: when the waiter began to wait
// (its place in the queue, kept across refreshes) and what for.
type WaitValue struct {
	SinceMS int64  `json:"since_ms"`
	Job     string `json:"job,omitempty"`
}

// KVValue is the payload of a kv entry, a put or a delete. Version is one
// more than the version its writer held for the key when it wrote (1 for a
// new key): it counts the writes the writer had seen, so that a write
// made without seeing another can be told apart (see KVConflict).
type KVValue struct {
	Value   string `json:"v,omitempty"`
	Version uint64 `json:"ver"`
}

// KVVersion returns the version of a kv write (0 if it holds none).
func KVVersion(d Delta) uint64 {
	var v KVValue
	_ = Decode(d.Value, &v)
	return v.Version
}

// KVConflict reports whether loser, a write to a kv key that lost to
// winner, was a concurrent write rather than an older one: winner was not
// made from loser or a later version (its version is not above loser's).
// Such a loser's value was overwritten by a writer that never saw it.
func KVConflict(winner, loser Delta) bool {
	return NamespaceOf(winner.Key) == NSKV && !winner.Equal(loser) && KVVersion(loser) >= KVVersion(winner)
}

// BlacklistValue is the payload of a bl entry.
type BlacklistValue struct {
	Reason string `json:"reason,omitempty"`
}

// Encode marshals a payload. Payload types hold only strings and maps of
// strings, so encoding cannot fail.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("crdt: encode payload: " + err.Error())
	}
	return b
}

// Decode unmarshals a payload into v. An empty payload leaves v zero.
func Decode(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}
