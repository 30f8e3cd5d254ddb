package replica

import (
	"errors"
	"fmt"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// Limits bound one entry and one gossip message. A zero field is no bound
// (Config.Validate in the agent requires them all).
type Limits struct {
	MaxKeyBytes         int // a key
	MaxValueBytes       int // a value, encoded
	MaxTags             int // a service instance's tags
	MaxDeltasPerMessage int // deltas in one gossip message
}

// ErrLimit is wrapped by the error of a local write over an entry bound.
var ErrLimit = errors.New("over a limit")

// wire returns the bounds gossip messages are decoded with.
func (l Limits) wire() wire.Limits {
	return wire.Limits{MaxDeltas: l.MaxDeltasPerMessage, MaxKeyBytes: l.MaxKeyBytes, MaxValue: l.MaxValueBytes}
}

// check says which size bound of one entry d exceeds, or is nil. It
// decodes nothing, so it runs before a delta's signature is verified; the
// bound on a service's tags is checked with the rest of its value, by the
// write policy (checkTags), which decodes it once.
func (l Limits) check(d crdt.Delta) error {
	if n := len(d.Key); l.MaxKeyBytes > 0 && n > l.MaxKeyBytes {
		return fmt.Errorf("key of %d bytes is over the limit of %d (max_key_bytes)", n, l.MaxKeyBytes)
	}
	if n := len(d.Value); l.MaxValueBytes > 0 && n > l.MaxValueBytes {
		return fmt.Errorf("value of %d bytes (encoded) for %q is over the limit of %d (max_value_bytes)", n, d.Key, l.MaxValueBytes)
	}
	return nil
}

// checkTags refuses a service value v of key with more tags than MaxTags.
func (l Limits) checkTags(key string, v crdt.ServiceValue) error {
	if l.MaxTags > 0 && len(v.Tags) > l.MaxTags {
		return &Refusal{Reason: ReasonLimit, Err: fmt.Errorf("%d tags on %q is over the limit of %d (max_tags)", len(v.Tags), key, l.MaxTags)}
	}
	return nil
}
