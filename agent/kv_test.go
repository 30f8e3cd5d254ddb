package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

func ver(v uint64) *uint64 { return &v }

// TestKVPutGetListDeleteAcrossAgents: a put on one agent is read on every
// other with its writer and version; versions count on; a delete and an
// expiry take the key away everywhere; --if-version is checked against
// the local version.
func TestKVPutGetListDeleteAcrossAgents(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, nil)
	a0, a1, a2 := as[0], as[1], as[2]
	e, err := a0.KVPut(ctx, "/config/web/prod/port", rpc.KVPut{Value: "8080"})
	if err != nil || e.Version != 1 || e.Writer != a0.ID() || e.Key != "/config/web/prod/port" {
		t.Fatalf("put: %+v %v", e, err)
	}
	if _, err := a0.KVPut(ctx, "/config/web/prod/host", rpc.KVPut{Value: "web.internal"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a0.KVPut(ctx, "/config/db/prod/url", rpc.KVPut{Value: "postgres://db"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the keys on every agent", func() error {
		for _, a := range as {
			got, err := a.KVList(ctx, "/config/web/")
			if err != nil || len(got) != 2 || got[0].Key != "/config/web/prod/host" || got[1].Value != "8080" {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), got, err)
			}
		}
		return nil
	})
	// a2 writes on from version 1; a1 sees version 2 from a2.
	if e, err := a2.KVPut(ctx, "/config/web/prod/port", rpc.KVPut{Value: "9090", IfVersion: ver(1)}); err != nil || e.Version != 2 {
		t.Fatalf("put if-version 1 on a2: %+v %v", e, err)
	}
	_, err = a2.KVPut(ctx, "/config/web/prod/port", rpc.KVPut{Value: "7070", IfVersion: ver(1)})
	var rerr *rpc.Error
	if !errors.As(err, &rerr) || rerr.Code != rpc.CodeDenied || !strings.Contains(err.Error(), "is at version 2") || rerr.Details["current_version"] != uint64(2) {
		t.Fatalf("a stale if-version: %v", err)
	}
	if _, err := a2.KVPut(ctx, "/config/web/prod/new", rpc.KVPut{Value: "x", IfVersion: ver(0)}); err != nil {
		t.Fatalf("create with if-version 0: %v", err)
	}
	if _, err := a2.KVPut(ctx, "/config/web/prod/new", rpc.KVPut{Value: "y", IfVersion: ver(0)}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("if-version 0 on an existing key: %v", err)
	}
	eventually(t, 10*time.Second, "version 2 on a1", func() error {
		got, err := a1.KVGet(ctx, "/config/web/prod/port")
		if err != nil || got.Version != 2 || got.Value != "9090" || got.Writer != a2.ID() {
			return fmt.Errorf("%+v %v", got, err)
		}
		return nil
	})
	// Delete on a1, with the version it sees; the delete's version is 3.
	d, err := a1.KVDelete(ctx, "/config/web/prod/port", ver(2))
	if err != nil || !d.Deleted || d.Version != 3 {
		t.Fatalf("delete: %+v %v", d, err)
	}
	// A key with a TTL goes away by itself.
	if _, err := a1.KVPut(ctx, "/config/tmp/flag", rpc.KVPut{Value: "on", TTLMillis: 300}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "delete and expiry everywhere", func() error {
		for _, a := range as {
			for _, k := range []string{"/config/web/prod/port", "/config/tmp/flag"} {
				if got, err := a.KVGet(ctx, k); rpc.CodeOf(err) != rpc.CodeNotFound {
					return fmt.Errorf("%s: %s: %+v %v", shortID(a.ID()), k, got, err)
				}
			}
		}
		return nil
	})
	// A put after the delete goes on from its version, and if-version 0
	// holds for a deleted key (get shows none).
	if e, err := a0.KVPut(ctx, "/config/web/prod/port", rpc.KVPut{Value: "80", IfVersion: ver(0)}); err != nil || e.Version != 4 {
		t.Fatalf("put after delete: %+v %v", e, err)
	}
	eventually(t, 10*time.Second, "same kv state everywhere", func() error { return sameState(as, "kv/") })
}

// TestKVBadInputChangesNothing: bad keys, values and versions are refused
// with an error that says what is wrong, and nothing is written.
func TestKVBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	for _, c := range []struct {
		key  string
		req  rpc.KVPut
		want string
	}{
		{"config/x", rpc.KVPut{Value: "v"}, "must start with '/'"},
		{"/config//x", rpc.KVPut{Value: "v"}, "empty segment"},
		{"/config/x/", rpc.KVPut{Value: "v"}, "empty segment"},
		{"/" + strings.Repeat("a/", 40) + "b", rpc.KVPut{Value: "v"}, "segments, limit 32"},
		{"/config/x", rpc.KVPut{Value: "v", TTLMillis: -1}, "must not be negative"},
		{"/config/x", rpc.KVPut{Value: string([]byte{0xff, 0xfe})}, "not UTF-8"},
		{"/config/x", rpc.KVPut{Value: strings.Repeat("x", 70_000)}, "max_value_bytes"},
	} {
		_, err := a.KVPut(ctx, c.key, c.req)
		if rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), c.want) {
			t.Errorf("put %q %+.40v: %v, want a bad request saying %q", c.key, c.req, err, c.want)
		}
	}
	if _, err := a.KVList(ctx, "config"); rpc.CodeOf(err) != rpc.CodeBadRequest {
		t.Errorf("list without a leading '/': %v", err)
	}
	if es := a.Store().List("kv/"); len(es) != 0 {
		t.Errorf("bad input wrote %+v", es)
	}
}

// TestKVWritersRefusedLocally: a node that kv_writers leaves out of a
// prefix is refused with the rule named, and may write elsewhere.
func TestKVWritersRefusedLocally(t *testing.T) {
	ctx := context.Background()
	cfg := config.LocalConfig(t.TempDir())
	cfg.KVWriters = map[string][]string{"/config/payments/": {"12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"}}
	a := startAlone(t, cfg, Options{})
	_, err := a.KVPut(ctx, "/config/payments/db", rpc.KVPut{Value: "x"})
	if rpc.CodeOf(err) != rpc.CodeDenied || !strings.Contains(err.Error(), "kv_writers /config/payments/") {
		t.Fatalf("put under a prefix this node may not write: %v", err)
	}
	if _, err := a.KVDelete(ctx, "/config/payments/db", nil); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("delete under it: %v", err)
	}
	if _, err := a.KVPut(ctx, "/config/web/port", rpc.KVPut{Value: "80"}); err != nil {
		t.Fatalf("put elsewhere: %v", err)
	}
}

// TestKVConcurrentIfVersionWritesShowTheLoser: two --if-version writes of
// one version on the two sides of a partition both succeed; after the
// heal every agent holds the later one, and the loser shows as a conflict
// on the losing writer's watch, in its history and in explain.
func TestKVConcurrentIfVersionWritesShowTheLoser(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 4, func(c *config.Config) {
		c.RedialMin, c.RedialMax = 50*time.Millisecond, 200*time.Millisecond
		c.AntiEntropy = 500 * time.Millisecond
	})
	as := l.as
	const key = "/config/app/mode"
	if _, err := as[0].KVPut(ctx, key, rpc.KVPut{Value: "blue"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "version 1 everywhere", func() error {
		for _, a := range as {
			if e, err := a.KVGet(ctx, key); err != nil || e.Version != 1 {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), e, err)
			}
		}
		return nil
	})
	l.partition(t, []int{0, 1}, []int{2, 3})
	w := startWatch(t, as[0], rpc.WatchRequest{Prefix: crdt.KVKey("/config/"), Keepalive: -1}, nil)
	w.snapshot(t)
	first, err := as[0].KVPut(ctx, key, rpc.KVPut{Value: "green", IfVersion: ver(1)})
	if err != nil {
		t.Fatal(err)
	}
	// The other side writes later (a later stamp): it wins after the heal.
	eventually(t, 5*time.Second, "the wall clock past the first write's stamp", func() error {
		if time.Now().UnixMilli() > first.Updated.UnixMilli() {
			return nil
		}
		return errors.New("not yet")
	})
	second, err := as[3].KVPut(ctx, key, rpc.KVPut{Value: "red", IfVersion: ver(1)})
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != 2 || second.Version != 2 || !second.Updated.After(first.Updated) {
		t.Fatalf("both sides write version 2, the second later: %+v, %+v", first, second)
	}
	l.heal()
	eventually(t, 15*time.Second, "the later write everywhere", func() error {
		for _, a := range as {
			if e, err := a.KVGet(ctx, key); err != nil || e.Value != "red" {
				return fmt.Errorf("%s: %+v %v", shortID(a.ID()), e, err)
			}
		}
		return sameState(as, "kv/")
	})
	// The losing writer's watch: its own put, then the conflict.
	var conflict rpc.Event
	for conflict.Op == "" {
		switch ev := w.next(t); ev.Op {
		case "put":
		case rpc.OpConflict:
			conflict = ev
		default:
			t.Fatalf("unexpected %+v", ev)
		}
	}
	if conflict.Lost == nil || conflict.Lost.Value != "green" || conflict.Lost.Writer != as[0].ID() || conflict.Node != as[3].ID() || conflict.Cursor == "" {
		t.Fatalf("conflict event %+v (lost %+v)", conflict, conflict.Lost)
	}
	h, err := as[0].KVHistory(ctx, key)
	if err != nil || len(h) != 3 || !h[0].Current || h[0].Value != "red" || !h[1].Conflict || h[1].Value != "green" || h[2].Conflict || h[2].Value != "blue" {
		t.Fatalf("history on the loser's node: %+v %v", h, err)
	}
	x, err := as[0].Explain(ctx, crdt.KVKey(key))
	if err != nil || len(x.Superseded) < 1 || !strings.HasPrefix(x.Superseded[0].Why, "conflict:") {
		t.Fatalf("explain: %+v %v", x, err)
	}
	// Put the lost value back, from the history.
	if e, err := as[0].KVPut(ctx, key, rpc.KVPut{Value: h[1].Value, IfVersion: ver(2)}); err != nil || e.Version != 3 {
		t.Fatalf("restore: %+v %v", e, err)
	}
}

// TestKVHistoryBounded: kv_history bounds the writes kept per key.
func TestKVHistoryBounded(t *testing.T) {
	ctx := context.Background()
	cfg := config.LocalConfig(t.TempDir())
	cfg.KVHistory = 3
	a := startAlone(t, cfg, Options{})
	for i := range 6 {
		if _, err := a.KVPut(ctx, "/k", rpc.KVPut{Value: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := a.KVHistory(ctx, "/k")
	if err != nil || len(h) != 3 || h[0].Value != "5" || !h[0].Current || h[2].Value != "3" || h[2].Version != 4 {
		t.Fatalf("history: %+v %v", h, err)
	}
	if _, err := a.KVHistory(ctx, "/none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Fatalf("history of an unknown key: %v", err)
	}
}
