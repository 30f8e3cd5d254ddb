package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// watchStream is a watch running in the background, its lines on a channel.
type watchStream struct {
	lines chan rpc.Event
	done  chan error
	stop  context.CancelFunc
}

// startWatch runs a.Watch(req) until the test ends or stop; gate, if not
// nil, is called before each line is handed over (a slow reader).
func startWatch(t *testing.T, a *Agent, req rpc.WatchRequest, gate func(rpc.Event)) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &watchStream{lines: make(chan rpc.Event, 100_000), done: make(chan error, 1), stop: cancel}
	t.Cleanup(cancel)
	go func() {
		s.done <- a.Watch(ctx, req, func(ev rpc.Event) error {
			if gate != nil {
				gate(ev)
			}
			s.lines <- ev
			return nil
		})
	}()
	return s
}

// next returns the next line that is not a keepalive.
func (s *watchStream) next(t *testing.T) rpc.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.lines:
			if ev.Op != rpc.OpKeepalive {
				return ev
			}
		case err := <-s.done:
			t.Fatalf("watch ended: %v", err)
		case <-deadline:
			t.Fatal("no watch line within 10s")
		}
	}
}

// snapshot reads a snapshot up to its synced line and returns its keys
// and cursor.
func (s *watchStream) snapshot(t *testing.T) ([]string, string) {
	t.Helper()
	var keys []string
	for {
		ev := s.next(t)
		switch ev.Op {
		case rpc.OpSnapshot:
			if ev.Cursor != "" || ev.Value == nil {
				t.Fatalf("snapshot line %+v: want a value and no cursor", ev)
			}
			keys = append(keys, ev.Key)
		case rpc.OpSynced:
			if ev.Cursor == "" {
				t.Fatal("synced without a cursor")
			}
			return keys, ev.Cursor
		default:
			t.Fatalf("in the snapshot: %+v", ev)
		}
	}
}

func setSvc(t *testing.T, a *Agent, inst, status string, ttl int64) {
	t.Helper()
	if _, err := a.ServiceSet(context.Background(), "web", inst, rpc.ServiceSet{Status: status, TTLMillis: ttl}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchStartsWithSnapshotThenChangesWithCursors(t *testing.T) {
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	setSvc(t, a, "b", "up", 0)
	setSvc(t, a, "a", "up", 0)
	setSvc(t, a, "gone", "up", 0)
	if err := a.ServiceDelete(context.Background(), "web", "gone"); err != nil {
		t.Fatal(err)
	}
	s := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Keepalive: -1}, nil)
	keys, at := s.snapshot(t)
	if fmt.Sprint(keys) != "[svc/web/a svc/web/b]" {
		t.Fatalf("snapshot %v, want the two live entries in key order", keys)
	}
	setSvc(t, a, "c", "draining", 0)
	ev := s.next(t)
	if ev.Op != "put" || ev.Key != "svc/web/c" || ev.Cursor == "" || ev.Cursor == at || ev.Node != a.ID() {
		t.Fatalf("first change %+v", ev)
	}
	if sv, ok := ev.Value.(rpc.Service); !ok || sv.Status != "draining" {
		t.Fatalf("value %#v", ev.Value)
	}
}

// TestWatchResumesWithSinceMissingNothing: a watch that went away and
// comes back with the cursor of its last line gets exactly the changes
// made meanwhile, in order: none missed, none twice, no snapshot.
func TestWatchResumesWithSinceMissingNothing(t *testing.T) {
	ctx := context.Background()
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	s := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Keepalive: -1}, nil)
	s.snapshot(t)
	setSvc(t, a, "0", "up", 0)
	ev := s.next(t)
	if ev.Key != "svc/web/0" {
		t.Fatalf("%+v", ev)
	}
	last := ev.Cursor
	s.stop()
	<-s.done

	const missed = 300
	var want []string
	present := map[int]bool{0: true}
	for i := range missed {
		if inst := i % 7; i%3 == 2 && present[inst] {
			if err := a.ServiceDelete(ctx, "web", fmt.Sprint(inst)); err != nil {
				t.Fatal(err)
			}
			present[inst] = false
			want = append(want, fmt.Sprintf("delete svc/web/%d", inst))
		} else {
			setSvc(t, a, fmt.Sprint(inst), fmt.Sprint("s", i), 0)
			present[inst] = true
			want = append(want, fmt.Sprintf("put svc/web/%d", inst))
		}
		if _, err := a.BlacklistAdd(ctx, "l", fmt.Sprint(i), rpc.BlacklistAdd{}); err != nil { // another prefix
			t.Fatal(err)
		}
	}
	r := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Since: last, Keepalive: -1}, nil)
	var got []string
	for range missed {
		ev := r.next(t)
		if ev.Cursor == "" {
			t.Fatalf("line without a cursor: %+v", ev)
		}
		got = append(got, ev.Op+" "+ev.Key)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d after resuming: %q, want %q", i, got[i], want[i])
		}
	}
	setSvc(t, a, "live", "up", 0)
	if ev := r.next(t); ev.Key != "svc/web/live" {
		t.Fatalf("after the missed events: %+v, want the live change (an extra or duplicate event)", ev)
	}
}

func TestWatchSinceTooOldOrForeignResyncs(t *testing.T) {
	cfg := config.LocalConfig(t.TempDir())
	cfg.WatchHistory = 8
	a := startAlone(t, cfg, Options{})
	s := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Keepalive: -1}, nil)
	_, at := s.snapshot(t)
	s.stop()
	for i := range 20 {
		setSvc(t, a, fmt.Sprint(i%3), fmt.Sprint("s", i), 0)
	}
	for _, c := range []struct{ since, reason string }{
		{at, rpc.ResyncTooOld},
		{"0123456789abcdef-3", rpc.ResyncForeign},
	} {
		r := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Since: c.since, Keepalive: -1}, nil)
		if ev := r.next(t); ev.Op != rpc.OpResync || ev.Reason != c.reason {
			t.Fatalf("since %s: first line %+v, want resync %s", c.since, ev, c.reason)
		}
		if keys, _ := r.snapshot(t); len(keys) != 3 {
			t.Fatalf("snapshot after resync: %v", keys)
		}
		r.stop()
	}
	if err := a.Watch(context.Background(), rpc.WatchRequest{Since: "garbage"}, func(rpc.Event) error { return nil }); rpc.CodeOf(err) != rpc.CodeBadRequest {
		t.Fatalf("a malformed cursor: %v", err)
	}
}

// TestWatchSlowReaderGetsResync: a reader stuck while many changes happen
// is not buffered for: it gets resync, a fresh snapshot and the stream
// goes on.
func TestWatchSlowReaderGetsResync(t *testing.T) {
	cfg := config.LocalConfig(t.TempDir())
	cfg.WatchHistory = 64
	a := startAlone(t, cfg, Options{})
	stuck, release := make(chan struct{}), make(chan struct{})
	first := true
	s := startWatch(t, a, rpc.WatchRequest{Prefix: "svc/", Keepalive: -1}, func(ev rpc.Event) {
		if ev.Op == "put" && first {
			first = false
			close(stuck)
			<-release
		}
	})
	s.snapshot(t)
	const writes = 1000
	setSvc(t, a, "x", "up", 0)
	<-stuck
	for i := range writes {
		setSvc(t, a, fmt.Sprint(i%10), fmt.Sprint("s", i), 0)
	}
	close(release)
	puts := 0
	for {
		ev := s.next(t)
		if ev.Op == rpc.OpResync {
			if ev.Reason != rpc.ResyncBehind {
				t.Fatalf("%+v", ev)
			}
			break
		}
		puts++
	}
	// What the agent handed over before the resync is at most the batch
	// it had read when the reader stuck, not the 1000 writes.
	if puts > watchBatch {
		t.Fatalf("%d changes delivered before the resync: the agent buffered for a stuck reader", puts)
	}
	if keys, _ := s.snapshot(t); len(keys) != 11 {
		t.Fatalf("snapshot after resync: %d keys, want 11", len(keys))
	}
	setSvc(t, a, "after", "up", 0)
	for {
		if ev := s.next(t); ev.Key == "svc/web/after" {
			break
		}
	}
}

// TestWatchRefreshExpiredAndKeepalive: rewriting an entry with only a new
// TTL is a refresh, its TTL passing is an expired event, and a quiet
// stream sends keepalives with the current cursor.
func TestWatchRefreshExpiredAndKeepalive(t *testing.T) {
	ctx := context.Background()
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	s := startWatch(t, a, rpc.WatchRequest{Prefix: "", Keepalive: 200 * time.Millisecond}, nil)
	s.snapshot(t)
	setSvc(t, a, "t", "up", 60_000)
	setSvc(t, a, "t", "up", 60_000)
	if _, err := a.BlacklistAdd(ctx, "tokens", "abc", rpc.BlacklistAdd{TTLMillis: 300}); err != nil {
		t.Fatal(err)
	}
	want := []string{"put svc/web/t", "refresh svc/web/t", "put bl/tokens/abc", "expired bl/tokens/abc"}
	var last string
	for i, w := range want {
		ev := s.next(t)
		if got := ev.Op + " " + ev.Key; got != w || ev.Cursor == "" {
			t.Fatalf("event %d: %q (cursor %q), want %q", i, got, ev.Cursor, w)
		}
		last = ev.Cursor
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.lines:
			if ev.Op != rpc.OpKeepalive {
				t.Fatalf("unexpected %+v", ev)
			}
			if ev.Cursor == "" {
				t.Fatal("keepalive without a cursor")
			}
			// A keepalive's cursor resumes without a gap or a repeat.
			r := startWatch(t, a, rpc.WatchRequest{Prefix: "", Since: ev.Cursor, Keepalive: -1}, nil)
			setSvc(t, a, "u", "up", 0)
			if ev := r.next(t); ev.Key != "svc/web/u" || ev.Op != "put" {
				t.Fatalf("resumed from keepalive (after %s): %+v", last, ev)
			}
			return
		case <-deadline:
			t.Fatal("no keepalive within 10s")
		}
	}
}

// TestWatchOwnerDownAndUp: when the failure detector declares a node
// dead, a watch on another node gets owner-down for the node's svc
// entries, and owner-up when it is back.
func TestWatchOwnerDownAndUp(t *testing.T) {
	as := startCluster(t, 2, fastDetector)
	setSvc(t, as[1], "b", "up", 0)
	eventually(t, 10*time.Second, "the entry replicated", func() error {
		if _, ok := as[0].Store().Get("svc/web/b"); !ok {
			return errNotYet
		}
		return nil
	})
	s := startWatch(t, as[0], rpc.WatchRequest{Prefix: "svc/", Keepalive: -1}, nil)
	if keys, _ := s.snapshot(t); fmt.Sprint(keys) != "[svc/web/b]" {
		t.Fatalf("snapshot %v", keys)
	}
	as[1].Crash()
	ev := s.next(t)
	sv, _ := ev.Value.(rpc.Service)
	if ev.Op != rpc.OpOwnerDown || ev.Key != "svc/web/b" || ev.Node != as[1].ID() || ev.Cursor == "" || sv.Status != "down" {
		t.Fatalf("%+v", ev)
	}

	cfg := as[1].cfg // the same data dir: the same node
	cfg.Bootstrap = as[0].Addrs()
	back := startAlone(t, cfg, Options{})
	if back.ID() != as[1].ID() {
		t.Fatal("restarted as another node")
	}
	ev = s.next(t)
	sv, _ = ev.Value.(rpc.Service)
	if ev.Op != rpc.OpOwnerUp || ev.Key != "svc/web/b" || ev.Node != as[1].ID() || ev.Cursor == "" || sv.Status != "up" {
		t.Fatalf("%+v", ev)
	}
}
