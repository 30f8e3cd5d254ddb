package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc"
)

// limitsConfig has small entry bounds, so the edges are cheap to reach.
func limitsConfig(t *testing.T) config.Config {
	cfg := config.LocalConfig(t.TempDir())
	cfg.MaxKeyBytes, cfg.MaxValueBytes, cfg.MaxTags, cfg.MaxDeltasPerMessage = 40, 300, 3, 5
	cfg.BatchMaxDeltas = 5 // within max_deltas_per_message
	return cfg
}

// addrFor returns an address that makes the encoded service value exactly n
// bytes long.
func addrFor(t *testing.T, n int) string {
	over := len(crdt.Encode(crdt.ServiceValue{Addr: "a", Status: "up"})) - 1
	addr := strings.Repeat("a", n-over)
	if got := len(crdt.Encode(crdt.ServiceValue{Addr: addr, Status: "up"})); got != n {
		t.Fatalf("value of %d bytes, want %d", got, n)
	}
	return addr
}

func tags(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("t%d", i)] = "v"
	}
	return m
}

// TestAPIWriteLimits: a local write at each entry bound passes; one byte
// (or tag) over is a bad request naming the bound, and changes nothing.
func TestAPIWriteLimits(t *testing.T) {
	cfg := limitsConfig(t)
	a := startAlone(t, cfg, Options{})
	ctx := context.Background()
	inst32, inst33 := strings.Repeat("i", 32), strings.Repeat("i", 33) // svc/web/ + 32 = 40 bytes
	for _, tc := range []struct {
		name     string
		instance string
		req      rpc.ServiceSet
		want     string // "" passes
	}{
		{"key at max_key_bytes", inst32, rpc.ServiceSet{Status: "up"}, ""},
		{"key over max_key_bytes", inst33, rpc.ServiceSet{Status: "up"}, "key of 41 bytes is over the limit of 40 (max_key_bytes)"},
		{"value at max_value_bytes", "v", rpc.ServiceSet{Status: "up", Addr: addrFor(t, 300)}, ""},
		{"value over max_value_bytes", "v2", rpc.ServiceSet{Status: "up", Addr: addrFor(t, 301)}, "value of 301 bytes (encoded) for \"svc/web/v2\" is over the limit of 300 (max_value_bytes)"},
		{"tags at max_tags", "t", rpc.ServiceSet{Status: "up", Tags: tags(3)}, ""},
		{"tags over max_tags", "t2", rpc.ServiceSet{Status: "up", Tags: tags(4)}, "4 tags on \"svc/web/t2\" is over the limit of 3 (max_tags)"},
	} {
		keys := a.Store().Len()
		_, err := a.ServiceSet(ctx, "web", tc.instance, tc.req)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a bad request containing %q", tc.name, err, tc.want)
		}
		if _, ok := a.Store().Get(crdt.ServiceKey("web", tc.instance)); ok || a.Store().Len() != keys {
			t.Errorf("%s: the refused write changed the state", tc.name)
		}
	}
	// The other writers are bounded too: a blacklist reason over the value bound.
	reason := strings.Repeat("r", 300)
	if _, err := a.BlacklistAdd(ctx, "l", "x", rpc.BlacklistAdd{Reason: reason}); rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), "max_value_bytes") {
		t.Errorf("bl add with a huge reason: %v, want bad request", err)
	}
	if _, ok := a.Store().Get("bl/l/x"); ok {
		t.Error("refused bl add applied")
	}
}

// TestGossipTagLimitCounted: an over-tagged service from a peer is
// rejected, counted under "limit", and changes nothing.
func TestGossipTagLimitCounted(t *testing.T) {
	cfg := limitsConfig(t)
	a := startAlone(t, cfg, Options{})
	raw := newRawPeer(t, a.Addrs())
	ctx := context.Background()
	seq := crdt.HLC(0)
	eventually(t, 10*time.Second, "the rejection counted", func() error {
		if n := a.Gossip().Rejections()[replica.ReasonLimit]; n == 0 {
			seq++ // a new message each time: GossipSub drops one it saw
			st := crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0) + seq, Node: raw.id()}
			data := envelope(t, raw.sign(t, crdt.Delta{Key: "svc/web/many", Stamp: st, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Status: "up", Tags: tags(4)})})...)
			if err := raw.Publish(ctx, "svc", data); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // pace the retries
			return errors.New("no limit rejection yet")
		}
		return nil
	})
	if _, ok := a.Store().Get("svc/web/many"); ok {
		t.Error("over-tagged service applied")
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runAgentAPI runs an agent with its local API until the test ends.
func runAgentAPI(t *testing.T, cfg config.Config) {
	t.Helper()
	a, err := New(cfg, Options{Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	c := rpc.NewClient(cfg.SocketPath())
	defer c.Close()
	eventually(t, 10*time.Second, "the local API answers", func() error {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		_, err := c.Status(context.Background())
		return err
	})
}

// TestLocalAPISecurity: the data dir holding the socket becomes 0700, the
// socket is 0600, and the TCP API answers only with the token.
func TestLocalAPISecurity(t *testing.T) {
	cfg := config.LocalConfig(filepath.Join(t.TempDir(), "data"))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.APIListen = freePort(t)
	cfg.APITokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.APITokenFile, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.MaxWatchers = 2
	runAgentAPI(t, cfg)

	if fi, _ := os.Stat(cfg.DataDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, _ := os.Lstat(cfg.SocketPath()); fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode())
	}
	ctx := context.Background()
	for _, tok := range []string{"", "wrong"} {
		if code := statusWith(t, "http://"+cfg.APIListen, tok); code != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, code)
		}
	}
	c, err := rpc.NewTCPClient("http://"+cfg.APIListen, "tok-123")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A watch that the client abandons frees its slot (the status counts
	// the store's watchers, the agent's own task watcher included).
	before := st.Watchers
	for range 3 {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Watch(wctx, rpc.WatchRequest{Prefix: "svc/"}, func(rpc.Event) error { return nil }) }()
		eventually(t, 10*time.Second, "the watch open", func() error {
			if st, err := c.Status(ctx); err != nil || st.Watchers != before+1 {
				return fmt.Errorf("watchers %d, want %d (%v)", st.Watchers, before+1, err)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the watcher freed", func() error {
			if st, err := c.Status(ctx); err != nil || st.Watchers != before {
				return fmt.Errorf("watchers %d, want %d (%v)", st.Watchers, before, err)
			}
			return nil
		})
	}
}

// statusWith asks for the status at url with token as bearer ("": none)
// and returns the HTTP status.
func statusWith(t *testing.T, url, token string) int {
	req, err := http.NewRequest(http.MethodGet, url+"/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestBatchWithinDeltaLimit(t *testing.T) {
	cfg := config.LocalConfig(t.TempDir())
	cfg.BatchMaxDeltas, cfg.MaxDeltasPerMessage = 100, 100
	if err := cfg.Validate(); err != nil {
		t.Fatalf("batch_max_deltas = max_deltas_per_message: %v", err)
	}
	cfg.BatchMaxDeltas = 101
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "batch_max_deltas: 101 is over max_deltas_per_message 100") {
		t.Fatalf("batch_max_deltas over max_deltas_per_message: %v", err)
	}
}

func TestAPIListenMustBeLoopback(t *testing.T) {
	cfg := config.LocalConfig(t.TempDir())
	cfg.APIListen, cfg.APITokenFile = "0.0.0.0:7070", "/dev/null"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "api_listen") || !strings.Contains(err.Error(), "127.0.0.1, ::1 or localhost") {
		t.Fatalf("Validate = %v, want api_listen refused as not loopback", err)
	}
	cfg.APIListen = "127.0.0.1:7070"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("loopback api_listen: %v", err)
	}
	// A token file others can read is refused at start.
	cfg.APITokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.APITokenFile, []byte("tok"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(cfg.APITokenFile, 0o644)
	cfg.APIListen = freePort(t)
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "other users may read it") {
		t.Fatalf("Run with a world-readable token file = %v", err)
	}
}
