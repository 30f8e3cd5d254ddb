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

// TaskValue is the payload of a task entry.
type TaskValue struct {
	Owner  string `json:"owner"`
	Result string `json:"result,omitempty"`
}

// WaitValue is the payload of a wait entry: when the waiter began to wait
// (its place in the queue, kept across refreshes) and what for.
type WaitValue struct {
	SinceMS int64  `json:"since_ms"`
	Job     string `json:"job,omitempty"`
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
