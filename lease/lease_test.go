package lease

import (
	"slices"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
)

const me, other = "me", "other"

func leaseOf(holder string, epoch uint64, granted, expiry int64) crdt.Lease {
	return crdt.Lease{Kernel: "kernel/k", Holder: holder, Epoch: epoch, Granted: crdt.Stamp{HLC: crdt.MakeHLC(granted, 0), Node: holder}, Expiry: expiry, MaxEpoch: epoch}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    crdt.Lease
		now  int64
		want Decision
	}{
		{"never claimed", crdt.Lease{Kernel: "kernel/k"}, 1000, Decision{Action: Claim, Epoch: 1}},
		{"ours, live", leaseOf(me, 3, 900, 5000), 1000, Decision{Action: Renew, Epoch: 3}},
		{"ours, expired within the skew margin", leaseOf(me, 3, 900, 999), 1000, Decision{Action: Deny, WaitMS: 100}},
		{"ours, expired past the skew margin", leaseOf(me, 3, 100, 700), 1000, Decision{Action: Claim, Epoch: 4}},
		{"theirs, live, settled", leaseOf(other, 3, 100, 5000), 1000, Decision{Action: Deny}},
		{"theirs, live, granted just now", leaseOf(other, 3, 950, 5000), 1000, Decision{Action: Deny, WaitMS: 150}},
		{"theirs, expired but within the skew margin", leaseOf(other, 3, 100, 900), 1000, Decision{Action: Deny}},
		{"theirs, expired past the skew margin", leaseOf(other, 3, 100, 700), 1000, Decision{Action: Claim, Epoch: 4}},
		{"theirs, released", func() crdt.Lease { l := leaseOf(other, 3, 100, 5000); l.Released = true; return l }(), 1000, Decision{Action: Claim, Epoch: 4}},
		{"a higher epoch named by a record", func() crdt.Lease { l := leaseOf(other, 3, 100, 5000); l.Released, l.MaxEpoch = true, 7; return l }(), 1000, Decision{Action: Claim, Epoch: 8}},
	} {
		if got := Decide(tc.l, me, tc.now, 200, 200); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestSettleWindow(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct{ fixed, p99, want time.Duration }{
		{0, 0, 50 * ms}, {0, 10 * ms, 50 * ms}, {0, 100 * ms, 300 * ms}, {0, time.Second, 2 * time.Second}, {70 * ms, time.Second, 70 * ms},
	} {
		if got := SettleWindow(tc.fixed, tc.p99, 50*ms, 2*time.Second); got != tc.want {
			t.Errorf("SettleWindow(%v, %v) = %v, want %v", tc.fixed, tc.p99, got, tc.want)
		}
	}
}

// kinds lists the kinds of events.
func kinds(evs []Event) []Kind {
	var out []Kind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// TestHolderStep walks one lease through its life: renewed every ttl/3,
// suspect once per episode while partitioned, then lost, expired or
// released as the records say.
func TestHolderStep(t *testing.T) {
	h := NewHolder(me)
	l := leaseOf(me, 1, 1000, 4000)
	if ev := h.Granted(l, 3000, 1000, true); ev.Kind != Granted || h.Held() != 1 {
		t.Fatalf("granted: %+v, held %d", ev, h.Held())
	}
	cur := l
	view := func(string) crdt.Lease { return cur }
	if st := h.Step(1500, view, false, false); len(st.Renew) != 0 || len(st.Events) != 0 {
		t.Fatalf("before ttl/3: %+v", st)
	}
	st := h.Step(2000, view, false, false)
	if len(st.Renew) != 1 || st.Renew[0] != (Renewal{Kernel: "kernel/k", Epoch: 1, Expiry: 5000, TTL: 3000}) {
		t.Fatalf("at ttl/3: %+v", st)
	}
	cur.Expiry = 5000
	h.Renewed("kernel/k", cur, 3000, 2000)
	// Partitioned: one suspect event, and renewals go on.
	st = h.Step(3000, view, true, false)
	if !slices.Equal(kinds(st.Events), []Kind{Suspect}) || len(st.Renew) != 1 {
		t.Fatalf("partitioned: %+v", st)
	}
	if st = h.Step(3100, view, true, false); len(st.Events) != 0 {
		t.Fatalf("suspect twice in one episode: %+v", st)
	}
	h.Step(3200, view, false, false) // the episode ends
	if st = h.Step(3300, view, true, false); !slices.Equal(kinds(st.Events), []Kind{Suspect}) {
		t.Fatalf("a new episode: %+v", st)
	}
	// With self-fencing the lease is to be released at once, not renewed.
	if st = h.Step(3400, view, true, true); len(st.Release) != 1 || len(st.Renew) != 0 {
		t.Fatalf("self-fence: %+v", st)
	}
	// Another claim won.
	cur = leaseOf(other, 2, 3500, 9000)
	if st = h.Step(3600, view, false, false); !slices.Equal(kinds(st.Events), []Kind{Lost}) || h.Held() != 0 {
		t.Fatalf("lost: %+v, held %d", st, h.Held())
	}
	// Expired and released.
	for _, tc := range []struct {
		name string
		at   crdt.Lease
		now  int64
		want Kind
	}{
		{"expired", leaseOf(me, 1, 1000, 4000), 4000, Expired},
		{"released", func() crdt.Lease { l := leaseOf(me, 1, 1000, 9000); l.Released = true; return l }(), 2000, Released},
	} {
		h := NewHolder(me)
		h.Granted(leaseOf(me, 1, 1000, 4000), 3000, 1000, true)
		if st := h.Step(tc.now, func(string) crdt.Lease { return tc.at }, false, false); !slices.Equal(kinds(st.Events), []Kind{tc.want}) || h.Held() != 0 {
			t.Errorf("%s: %+v", tc.name, st)
		}
	}
}

// TestResume: after a restart a node takes back its live leases, with the
// ttl they were last renewed for, and not the others'.
func TestResume(t *testing.T) {
	h := NewHolder(me)
	mine := leaseOf(me, 2, 1000, 7000)
	mine.Renewed = crdt.Stamp{HLC: crdt.MakeHLC(4000, 0), Node: me}
	released := leaseOf(me, 1, 1000, 7000)
	released.Kernel, released.Released = "kernel/r", true
	theirs := leaseOf(other, 1, 1000, 7000)
	theirs.Kernel = "kernel/t"
	got := h.Resume([]crdt.Lease{mine, released, theirs}, 5000, func(crdt.Lease) bool { return true })
	if len(got) != 1 || got[0] != mine || h.Held() != 1 {
		t.Fatalf("resumed %+v", got)
	}
	// Renewed at 4000 for 3000 ms: due at 5000.
	st := h.Step(5000, func(string) crdt.Lease { return mine }, false, false)
	if len(st.Renew) != 1 || st.Renew[0].TTL != 3000 {
		t.Fatalf("after resume: %+v", st)
	}
}

// TestLateGrantRenewsAtOnce: a claim judged late in its TTL (a long key
// exchange) counts its life from its stamp: the first Step renews it if a
// third of the TTL has passed since the claim, instead of waiting a third
// of the TTL from the grant, by when it would have expired (make chaos).
func TestLateGrantRenewsAtOnce(t *testing.T) {
	h := NewHolder(me)
	l := leaseOf(me, 1, 1000, 4000) // claimed at 1000 for 3 s
	h.Granted(l, 3000, 3100, true)  // judged 2.1 s later
	st := h.Step(3150, func(string) crdt.Lease { return l }, false, false)
	if len(st.Renew) != 1 || st.Renew[0].Expiry != 6150 || len(st.Events) != 0 {
		t.Fatalf("first step after a late grant: %+v, want a renewal to 6150", st)
	}
}

// TestClientRenewedLeaseIsNotRenewedByStep: a lease held without auto (a
// session's, a one-shot claim's) is renewed only by its client: Step never
// asks for a renewal, and reports it expired once its expiry passes.
func TestClientRenewedLeaseIsNotRenewedByStep(t *testing.T) {
	h := NewHolder(me)
	l := leaseOf(me, 1, 1000, 4000)
	h.Granted(l, 3000, 1000, false)
	view := func(string) crdt.Lease { return l }
	for _, now := range []int64{2000, 3000, 3999} {
		if st := h.Step(now, view, false, false); len(st.Renew) != 0 || len(st.Events) != 0 {
			t.Fatalf("at %d: %+v", now, st)
		}
	}
	st := h.Step(4000, view, false, false)
	if len(st.Events) != 1 || st.Events[0].Kind != Expired || h.Held() != 0 {
		t.Fatalf("at expiry: %+v, held %d", st, h.Held())
	}
	h.Track(l, 3000, 1000, false)
	if got := h.Leases(); len(got) != 1 || got[0] != l {
		t.Fatalf("Leases: %+v", got)
	}
}

func TestNextRenewalIsTheEarliestAutoRenewal(t *testing.T) {
	h := NewHolder("n1")
	if _, ok := h.NextRenewal(); ok {
		t.Fatal("an empty holder has a renewal due")
	}
	at := crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: "n1"}
	h.Granted(crdt.Lease{Kernel: "kernel/a", Holder: "n1", Epoch: 1, Granted: at}, 900, 1000, true)
	h.Granted(crdt.Lease{Kernel: "kernel/b", Holder: "n1", Epoch: 1, Granted: at}, 300, 1000, true)
	h.Granted(crdt.Lease{Kernel: "kernel/c", Holder: "n1", Epoch: 1, Granted: at}, 30, 1000, false) // a session's: not the holder's to renew
	if at, ok := h.NextRenewal(); !ok || at != 1100 {
		t.Fatalf("NextRenewal = %d, %v; want 1100 (b's third)", at, ok)
	}
}
