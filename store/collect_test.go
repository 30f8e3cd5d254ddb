package store

import (
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

const (
	hour = int64(3_600_000)
	now  = int64(1_700_000_000_000)
)

func stampAt(ms int64, node string) crdt.Stamp {
	return crdt.Stamp{HLC: crdt.MakeHLC(ms, 0), Node: node}
}

func reg(key string, ms int64, op crdt.Op, expiry int64) crdt.Delta {
	return crdt.Delta{Key: key, Stamp: stampAt(ms, "n1"), Op: op, Expiry: expiry, Value: []byte("v")}
}

func rec(key string, ms int64, node string, op crdt.Op, epoch uint64, expiry int64) crdt.Delta {
	return crdt.Delta{Key: key, Stamp: stampAt(ms, node), Op: op, Epoch: epoch, Expiry: expiry}
}

func TestCollect(t *testing.T) {
	const horizon = 24 * hour
	old := now - horizon - hour    // before the horizon
	recent := now - horizon + hour // within it
	ttl := int64(30_000)

	// Kernel entries are never collected: merges already dropped what
	// cannot matter. kernel/old: epoch 1 by n1 expired, epoch 2 by n2
	// granted before the horizon and renewed since: epoch 1 went on apply.
	kOld := []crdt.Delta{
		rec("kernel/old", old-10*hour, "n1", crdt.OpClaim, 1, old-10*hour+ttl),
		rec("kernel/old", old-10*hour+ttl/3, "n1", crdt.OpRenew, 1, old-10*hour+ttl),
		rec("kernel/old", old, "n2", crdt.OpClaim, 2, old+ttl),
		rec("kernel/old", old+ttl/3, "n2", crdt.OpRenew, 2, now+ttl),
	}
	// kernel/superseded: n3 claimed epoch 2 while n1's epoch 1 was live (as
	// across a partition): the highest epoch wins, and within it the
	// earliest claim, so n3 holds epoch 2 and n2's later epoch-2 claim
	// lost. Epoch 1 went on apply; both epoch-2 claims stay.
	kDenied := []crdt.Delta{
		rec("kernel/denied", old-10*hour, "n1", crdt.OpClaim, 1, old-10*hour+ttl),
		rec("kernel/denied", old-10*hour+1000, "n3", crdt.OpClaim, 2, old-10*hour+1000+ttl),
		rec("kernel/denied", old, "n2", crdt.OpClaim, 2, now+ttl),
	}
	// kernel/recent: the newer epoch, granted within the horizon: epoch 1
	// went on apply all the same.
	kRecent := []crdt.Delta{
		rec("kernel/recent", old-10*hour, "n1", crdt.OpClaim, 1, old-10*hour+ttl),
		rec("kernel/recent", recent, "n2", crdt.OpClaim, 2, now+ttl),
	}
	// kernel/released: one epoch, released long ago: the entry stays so the
	// next claim takes epoch 2.
	kReleased := []crdt.Delta{
		rec("kernel/released", old-10*hour, "n1", crdt.OpClaim, 1, old-10*hour+ttl),
		rec("kernel/released", old-10*hour+1, "n1", crdt.OpRelease, 1, 0),
	}

	ds := []crdt.Delta{
		reg("bl/l/old-removed", old, crdt.OpDelete, 0),
		reg("bl/l/recent-removed", recent, crdt.OpDelete, 0),
		reg("svc/a/long-expired", old-ttl, crdt.OpPut, old),
		reg("svc/a/recently-expired", recent-ttl, crdt.OpPut, recent),
		reg("bl/l/ttl-live", now-hour, crdt.OpPut, now+hour),
		reg("svc/a/old-live", old-100*hour, crdt.OpPut, 0),
		reg("node/n1", old, crdt.OpPut, 0),
		reg("task/t-deleted", old, crdt.OpDelete, 0),
	}
	ds = append(ds, kOld...)
	ds = append(ds, kDenied...)
	ds = append(ds, kRecent...)
	ds = append(ds, kReleased...)

	path := dataPath(t)
	s := openT(t, path, never)
	s.Apply(ds...)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(s)
	// The kernels hold only what can matter, before any collection.
	wantRecords := map[string][]crdt.Delta{"kernel/old": kOld[2:], "kernel/denied": kDenied[1:], "kernel/recent": kRecent[1:], "kernel/released": kReleased}
	for k, want := range wantRecords {
		if e := before[k]; !e.Equal(crdt.Entry{Key: k, Deltas: want}) {
			t.Errorf("%s as applied: %+v, want records %+v", k, e.Deltas, want)
		}
	}
	w := s.Watch("", 1000)

	got := s.Collect(now, horizon)

	// 3 register keys, no kernel record.
	if got != 3 {
		t.Errorf("Collect removed %d, want 3", got)
	}
	for _, k := range []string{"bl/l/old-removed", "svc/a/long-expired", "task/t-deleted"} {
		if _, ok := s.Get(k); ok {
			t.Errorf("%s survived collection", k)
		}
	}
	for _, k := range []string{"bl/l/recent-removed", "svc/a/recently-expired", "bl/l/ttl-live", "svc/a/old-live", "node/n1", "kernel/old", "kernel/denied", "kernel/recent", "kernel/released"} {
		if e, ok := s.Get(k); !ok || !e.Equal(before[k]) {
			t.Errorf("%s changed: %+v, %v", k, e, ok)
		}
	}
	if len(before)-s.Len() != 3 {
		t.Errorf("%d keys before, %d after: want 3 removed", len(before), s.Len())
	}
	if r := crdt.Resolve(s.List("kernel/released")[0]); r.MaxEpoch != 1 || r.Live(now) {
		t.Errorf("kernel/released: %+v", r)
	}
	if n := len(w.C()); n != 0 {
		t.Fatalf("Collect fired %d watch events", n)
	}
	if again := s.Collect(now, horizon); again != 0 {
		t.Fatalf("second Collect removed %d more", again)
	}

	// The removal reaches the disk.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	after := snapshot(s)
	sameState(t, "disk after Collect", diskEntries(t, s), after)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameState(t, "reopened after Collect", snapshot(openT(t, path, never)), after)
}

// A collected key merges normally if a peer hands it back: anti-entropy
// from a replica that has not collected yet.
func TestCollectedKeyCanReturnAndIsCollectedAgain(t *testing.T) {
	s := New()
	d := reg("bl/l/x", now-48*hour, crdt.OpDelete, 0)
	s.Apply(d)
	if n := s.Collect(now, 24*hour); n != 1 {
		t.Fatalf("removed %d", n)
	}
	if ch := s.Apply(d); len(ch) != 1 {
		t.Fatal("returned tombstone did not apply")
	}
	if n := s.Collect(now, 24*hour); n != 1 || s.Len() != 0 {
		t.Fatalf("second collection removed %d, %d keys left", n, s.Len())
	}
}
