package kernels

import (
	"encoding/json"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

// TestOwners: a claim is recorded for one owner per kernel and epoch; a
// later owner cannot take an epoch another claims or holds; only the owner
// may use the lease (a lease with no recorded owner is the one-shot
// claims'); drops are by epoch; every change is saved, and a saved map
// loads back.
func TestOwners(t *testing.T) {
	var saved []byte
	o, err := newOwners(nil, func(by map[string]owner) { saved, _ = json.Marshal(by) })
	if err != nil {
		t.Fatal(err)
	}
	a := owner{Session: "A", Epoch: 1}
	if _, ok := o.claim("kernel/k", a); !ok {
		t.Fatal("first claim refused")
	}
	if cur, ok := o.claim("kernel/k", owner{Session: "B", Epoch: 1}); ok || cur != a {
		t.Fatalf("a second owner of epoch 1: %+v %v", cur, ok)
	}
	if _, ok := o.claim("kernel/k", a); !ok {
		t.Fatal("the owner's own claim again refused")
	}
	l := crdt.Lease{Kernel: "kernel/k", Epoch: 1}
	if !o.mayUse(l, "A") || o.mayUse(l, "B") || o.mayUse(l, "") {
		t.Fatal("mayUse: only session A may use epoch 1")
	}
	if free := (crdt.Lease{Kernel: "kernel/free", Epoch: 3}); !o.mayUse(free, "") || o.mayUse(free, "A") {
		t.Fatal("mayUse: a lease without an owner is the one-shot claims'")
	}
	if n := o.sessions(); n != 1 {
		t.Fatalf("sessions = %d", n)
	}
	loaded, err := newOwners(saved, nil)
	if w, ok := loaded.get("kernel/k", 1); err != nil || !ok || w != a {
		t.Fatalf("loaded back: %+v %v (saved %s)", w, ok, saved)
	}
	o.drop("kernel/k", 2) // another epoch: kept
	if _, ok := o.get("kernel/k", 1); !ok {
		t.Fatal("drop of another epoch dropped the owner")
	}
	o.dropUpTo("kernel/k", 0)
	if _, ok := o.get("kernel/k", 1); !ok {
		t.Fatal("dropUpTo an older epoch dropped the owner")
	}
	o.dropUpTo("kernel/k", 2) // lost to epoch 2
	if _, ok := o.get("kernel/k", 1); ok || o.sessions() != 0 {
		t.Fatal("dropUpTo a later epoch kept the owner")
	}
	if string(saved) != "{}" {
		t.Fatalf("saved after the last drop: %s", saved)
	}
	if bad, err := newOwners([]byte("not json"), nil); err == nil || bad.sessions() != 0 {
		t.Fatalf("an unreadable saved map: %v, %d sessions", err, bad.sessions())
	}
}
