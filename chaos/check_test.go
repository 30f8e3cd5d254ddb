package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

func rec(key, op, node string, wallMS int64) rpc.Record {
	h := crdt.MakeHLC(wallMS, 0)
	return rpc.Record{Key: key, Op: op, Node: node, HLC: uint64(h), Stamp: h.String()}
}

func claimRec(key, node string, wallMS int64, epoch uint64) rpc.Record {
	r := rec(key, "claim", node, wallMS)
	r.Epoch, r.ExpiryMillis = epoch, wallMS+3000
	return r
}

func TestDiff(t *testing.T) {
	a := []rpc.Record{rec("bl/x/1", "put", "n1", 10), rec("node/n1", "put", "n1", 11)}
	b := []rpc.Record{rec("node/n1", "put", "n1", 99), rec("bl/x/1", "put", "n1", 10)}
	if d := Diff([][]rpc.Record{a, b}, func(k string) bool { return strings.HasPrefix(k, "node/") }); d != "" {
		t.Fatalf("same records in another order, node/ skipped: %s", d)
	}
	if d := Diff([][]rpc.Record{a, b}, nil); d == "" {
		t.Fatal("different node/ records not reported without skip")
	}
	c := []rpc.Record{rec("bl/x/1", "delete", "n2", 12)}
	if d := Diff([][]rpc.Record{a[:1], c}, nil); !strings.Contains(d, "agent 1") {
		t.Fatalf("diff = %q", d)
	}
	if d := Diff([][]rpc.Record{a[:1], nil}, nil); !strings.Contains(d, "agent 1 does not") {
		t.Fatalf("missing record: diff = %q", d)
	}
}

func TestLost(t *testing.T) {
	add := rec("bl/x/1", "put", "n1", 10)
	rm := rec("bl/x/1", "delete", "n2", 20)
	readd := rec("bl/x/1", "put", "n1", 30)
	ops := []Op{
		{ID: 1, Agent: 0, Kind: "bl-add", Key: add.Key, Outcome: OK, Acked: &add},
		{ID: 2, Agent: 1, Kind: "bl-rm", Key: rm.Key, Outcome: OK, Acked: &rm},
		{ID: 3, Agent: 0, Kind: "bl-add", Key: rm.Key, Outcome: Unknown}, // no ack, no claim
	}
	if vs := Lost(ops, []rpc.Record{rm}); len(vs) != 0 {
		t.Fatalf("remove superseding add: %v", vs)
	}
	if vs := Lost(ops, []rpc.Record{readd}); len(vs) != 0 {
		t.Fatalf("later re-add supersedes both: %v", vs)
	}
	vs := Lost(ops, []rpc.Record{add})
	if len(vs) != 1 || vs[0].Check != CheckResurrected {
		t.Fatalf("acked remove undone by the earlier add: %v", vs)
	}
	vs = Lost(ops, nil)
	if len(vs) != 2 || vs[0].Check != CheckLost {
		t.Fatalf("empty final state: %v", vs)
	}
	// Kernel records form a set: a claim must be present.
	c1, c2 := claimRec("kernel/k", "n1", 10, 1), claimRec("kernel/k", "n2", 11, 1)
	kops := []Op{{ID: 4, Kind: "kernel-claim", Outcome: OK, Acked: &c1}, {ID: 5, Kind: "kernel-claim", Outcome: OK, Acked: &c2}}
	if vs := Lost(kops, []rpc.Record{c1, c2}); len(vs) != 0 {
		t.Fatalf("both records present: %v", vs)
	}
	if vs := Lost(kops, []rpc.Record{c2}); len(vs) != 1 || !strings.Contains(vs[0].Detail, "op 4") {
		t.Fatalf("losing claim record dropped: %v", vs)
	}
	bad := rpc.Record{Key: "bl/x/1", Op: "smash"}
	if vs := Lost([]Op{{ID: 6, Outcome: OK, Acked: &bad}}, nil); len(vs) != 1 || vs[0].Check != CheckDecode {
		t.Fatalf("undecodable op: %v", vs)
	}
}

func TestPhantoms(t *testing.T) {
	nodes := map[string]int{"n1": 0, "n2": 1}
	ops := []Op{{Agent: 0, Key: "bl/x/1"}}
	final := []rpc.Record{rec("bl/x/1", "put", "n1", 10), rec("task/t", "put", "n2", 10)}
	if vs := Phantoms(ops, final, nodes); len(vs) != 0 {
		t.Fatalf("issued write: %v", vs)
	}
	final = append(final, rec("svc/a/b", "put", "n2", 11), rec("bl/y/1", "put", "stranger", 12))
	if vs := Phantoms(ops, final, nodes); len(vs) != 2 {
		t.Fatalf("want 2 phantoms (unissued svc, stranger's bl), got %v", vs)
	}
}

func TestEpochRegressions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := []Sample{
		{Round: 1, At: at(0), Agent: 0, Kernels: []rpc.Kernel{{ID: "k", Epoch: 1}}},
		{Round: 2, At: at(250), Agent: 0, Kernels: []rpc.Kernel{{ID: "k", Epoch: 2}}},
		{Round: 2, At: at(250), Agent: 1, Kernels: []rpc.Kernel{{ID: "k", Epoch: 1}}}, // another agent may lag
	}
	if vs := EpochRegressions(ok); len(vs) != 0 {
		t.Fatalf("monotonic per agent: %v", vs)
	}
	bad := append(ok, Sample{Round: 3, At: at(500), Agent: 0, Kernels: []rpc.Kernel{{ID: "k", Epoch: 1}}})
	if vs := EpochRegressions(bad); len(vs) != 1 || !strings.Contains(vs[0].Detail, "agent 0") {
		t.Fatalf("regression: %v", vs)
	}
}

func TestDoubleGrants(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ids := []string{"n1", "n2", "n3"}
	period := 250 * time.Millisecond
	var samples []Sample
	round := func(n int, holders ...string) {
		for i := range ids {
			k := rpc.Kernel{ID: "k", Holder: holders[i], Live: holders[i] != ""}
			samples = append(samples, Sample{Round: n, At: t0.Add(time.Duration(n) * period), Agent: i, Kernels: []rpc.Kernel{k}})
		}
	}
	round(0, "n1", "n1", "n1") // one holder, seen by all
	round(1, "n1", "n2", "n1") // n2 believes it holds k too
	round(2, "n1", "n2", "n2")
	round(3, "n1", "n1", "n1") // healed
	round(4, "n3", "n3", "n3") // n3 sees itself; nobody else claims
	round(5, "n1", "n3", "n3") // n1 still believes: a second window
	ws := DoubleGrants(samples, ids, period)
	if len(ws) != 2 {
		t.Fatalf("windows = %+v, want 2", ws)
	}
	if ws[0].Duration != 2*period || strings.Join(ws[0].Holders, ",") != "n1,n2" {
		t.Fatalf("first window = %+v, want 2 periods, n1 and n2", ws[0])
	}
	if ws[1].Duration != period || strings.Join(ws[1].Holders, ",") != "n1,n3" {
		t.Fatalf("second window = %+v", ws[1])
	}
	// A view naming another node does not count as a belief of holding.
	samples = nil
	round(0, "n2", "n2", "n2")
	if ws := DoubleGrants(samples, ids, period); len(ws) != 0 {
		t.Fatalf("agreeing views: %+v", ws)
	}
}

func TestHoldersAgree(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	view := func(skew time.Duration, ks ...rpc.Kernel) View {
		return View{Now: now.Add(skew), Slack: 10 * time.Millisecond, Kernels: ks}
	}
	a := rpc.Kernel{ID: "k", Holder: "n1", Epoch: 2, Live: true, Expires: now.Add(2 * time.Second)}
	if vs := HoldersAgree([]View{view(0, a), view(0, a), view(0, a)}); len(vs) != 0 {
		t.Fatal(vs)
	}
	b := a
	b.Holder = "n2"
	if vs := HoldersAgree([]View{view(0, a), view(0, b), view(0)}); len(vs) != 2 {
		t.Fatalf("disagreement and missing kernel: %v", vs)
	}
	// An agent 3 s ahead reads the same lease, expiring 2 s from now on
	// the first agent's clock, as expired: its clock explains it.
	expired := a
	expired.Live = false
	if vs := HoldersAgree([]View{view(0, a), view(3*time.Second, expired)}); len(vs) != 0 {
		t.Fatalf("a liveness the clocks explain: %v", vs)
	}
	// With clocks 1 s apart, the expiry is not between them: a violation.
	if vs := HoldersAgree([]View{view(0, a), view(time.Second, expired)}); len(vs) != 1 {
		t.Fatalf("a liveness the clocks do not explain: %v", vs)
	}
	// Nor do clocks explain a released lease seen live.
	released := expired
	released.Released = true
	if vs := HoldersAgree([]View{view(0, a), view(3*time.Second, released)}); len(vs) != 1 {
		t.Fatalf("a release seen live elsewhere: %v", vs)
	}
}
