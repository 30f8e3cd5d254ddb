package kernels

import (
	"encoding/json"
	"maps"
	"sync"

	"github.com/rumor-dev/rumor/crdt"
)

// owner is who, on this agent, holds (or is claiming) one of its leases:
// a client's session, or a one-shot claim. Gossip knows only the node; the
// agent tells its clients apart, so that two sessions on one host are two
// claimants and one cannot renew or release the other's lease.
type owner struct {
	Session string `json:"session,omitempty"` // "" for a one-shot claim
	// Keep: a one-shot claim the agent renews every ttl/3 until released.
	Keep  bool   `json:"keep,omitempty"`
	Epoch uint64 `json:"epoch"`
}

// owners maps kernel keys to the owner of this agent's claim or lease on
// them. It is kept in the store's metadata, so that after a crash the
// agent renews again only the leases it was asked to keep, and releases a
// session's (whose client lost its connection with the crash).
type owners struct {
	mu   sync.Mutex
	by   map[string]owner
	save func(by map[string]owner) // persists a snapshot; nil: not kept
}

// ownersMeta is the store metadata key of the owners.
const ownersMeta = "lease-owners"

// newOwners returns the owners saved as load (none if load is empty), and
// an error if load cannot be read (the owners are then none).
func newOwners(load []byte, save func(map[string]owner)) (*owners, error) {
	o := &owners{by: make(map[string]owner), save: save}
	if len(load) == 0 {
		return o, nil
	}
	if err := json.Unmarshal(load, &o.by); err != nil {
		o.by = make(map[string]owner)
		return o, err
	}
	return o, nil
}

// claim records that owner w claims key at its epoch, unless another owner
// claims or holds key at that epoch or a later one: it then returns that
// owner and false.
func (o *owners) claim(key string, w owner) (owner, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur, ok := o.by[key]; ok && cur.Epoch >= w.Epoch && cur != w {
		return cur, false
	}
	o.by[key] = w
	o.persistLocked()
	return w, true
}

// get returns key's owner of epoch, if any.
func (o *owners) get(key string, epoch uint64) (owner, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.by[key]
	return w, ok && w.Epoch == epoch
}

// drop forgets key's owner of epoch.
func (o *owners) drop(key string, epoch uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.by[key]; ok && w.Epoch == epoch {
		delete(o.by, key)
		o.persistLocked()
	}
}

// dropUpTo forgets key's owner if its epoch is epoch or older: the lease
// of a claim this agent made is gone (lost to a later epoch, expired,
// released); a claim of a later epoch stays.
func (o *owners) dropUpTo(key string, epoch uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.by[key]; ok && w.Epoch <= epoch {
		delete(o.by, key)
		o.persistLocked()
	}
}

func (o *owners) persistLocked() {
	if o.save != nil {
		o.save(maps.Clone(o.by))
	}
}

// sessions counts the leases and claims that sessions own.
func (o *owners) sessions() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, w := range o.by {
		if w.Session != "" {
			n++
		}
	}
	return n
}

// mayUse reports whether a claim by session (a one-shot claim if "") may
// renew l, a live lease of this node: only its own owner may, and a lease
// with no owner recorded is the one-shot claims'.
func (o *owners) mayUse(l crdt.Lease, session string) bool {
	w, ok := o.get(l.Kernel, l.Epoch)
	if !ok {
		return session == ""
	}
	return w.Session == session
}
