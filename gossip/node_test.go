package gossip

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

func mustID(t *testing.T, cfg Config) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkNoGoroutines fails if any goroutine of this package (other than
// tests) is still running; goleak is not in the module graph, so this is a
// narrow stand-in that looks for the node's own functions.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	ours := []string{"gossip.(*Node).read", "redial.(*Redialer)", "gossip.New."}
	var stacks string
	deadline := time.Now().Add(2 * time.Second) // pubsub's own goroutines finish a validation in flight
	for {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leak := false
		for _, g := range strings.Split(stacks, "\n\n") {
			for _, f := range ours {
				if strings.Contains(g, f) {
					leak = true
					if time.Now().After(deadline) {
						t.Fatalf("goroutine left running after Close:\n%s", g)
					}
				}
			}
		}
		if !leak {
			return
		}
		runtime.Gosched()
	}
}

// TestCloseIsIdempotentAndStopsEverything closes a connected node several
// times, concurrently, and checks what is left afterwards.
func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	a, _ := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = a.Addrs()
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "B connected to A", func() bool { return connected(b, a) })

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	if _, ok := <-b.Messages(); ok {
		t.Error("Messages channel still open after Close")
	}
	if err := b.Publish(context.Background(), "svc", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	b.AddPeer(peer.AddrInfo{ID: a.ID()}) // must not block
	eventually(t, waitFor, "A to see B gone", func() bool { return !connected(a, b) })

	// Close A too (its cleanup Close is then a no-op): nothing of ours runs.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoGoroutines(t)
}

// TestNewFailsCleanly checks that a failing New releases what it started.
func TestNewFailsCleanly(t *testing.T) {
	cfg := testConfig(t)
	cfg.HostOptions = []libp2p.Option{func(*libp2p.Config) error { return errors.New("refused by test") }}
	if _, err := New(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "gossip: ") {
		t.Fatalf("New = %v, want a gossip: error", err)
	}
	cfg = testConfig(t)
	cfg.pubsubOptions = []pubsub.Option{func(*pubsub.PubSub) error { return errors.New("refused by test") }}
	if _, err := New(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "gossip: start gossipsub") {
		t.Fatalf("New = %v, want a gossipsub start error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(ctx, testConfig(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("New(cancelled ctx) = %v, want context.Canceled", err)
	}
	checkNoGoroutines(t)
}

func TestConfigValidate(t *testing.T) {
	base := testConfig(t)
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Cluster", func(c *Config) { c.Cluster = "" }},
		{"Cluster", func(c *Config) { c.Cluster = "a/b" }},
		{"Topics", func(c *Config) { c.Topics = nil }},
		{"Topics[1]", func(c *Config) { c.Topics = []string{"svc", "svc"} }},
		{"Topics[0]", func(c *Config) { c.Topics = []string{""} }},
		{"Listen", func(c *Config) { c.Listen = nil }},
		{"Listen[0]", func(c *Config) { c.Listen = []string{"not an addr"} }},
		{"Bootstrap[0]", func(c *Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }},
		{"Identity", func(c *Config) { c.Identity = nil }},
		{"MaxMessageBytes", func(c *Config) { c.MaxMessageBytes = -1 }},
		{"RedialMin", func(c *Config) { c.RedialMin = -time.Second }},
		{"RedialMax", func(c *Config) { c.RedialMin, c.RedialMax = time.Second, time.Millisecond }},
		{"DialTimeout", func(c *Config) { c.DialTimeout = -1 }},
	} {
		cfg := base
		tc.edit(&cfg)
		err := cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.HasPrefix(err.Error(), "gossip: ") {
			t.Errorf("bad %s: validate() = %v", tc.field, err)
		}
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("bad %s: New succeeded", tc.field)
		}
	}
	if err := base.withDefaults().validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
	d := Config{}.withDefaults()
	if d.MaxMessageBytes != DefaultMaxMessageBytes || d.RedialMin != DefaultRedialMin ||
		d.RedialMax != DefaultRedialMax || d.DialTimeout != DefaultDialTimeout || d.Logger == nil || d.Rand == nil {
		t.Errorf("defaults not applied: %+v", d)
	}
	if got := TopicName("prod", "svc"); got != "/rumor/prod/svc/1" {
		t.Errorf("TopicName = %q", got)
	}
}

// TestImportsNoRumorPackage enforces the layering: gossip moves bytes and
// imports nothing of ours but its own sub-packages, which import nothing
// of ours at all (so never gossip).
func TestImportsNoRumorPackage(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) == 0 {
		t.Fatal("no sub-package found: is the test in gossip's directory?")
	}
	fset := token.NewFileSet()
	for _, f := range append(files, sub...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			own := strings.HasPrefix(path, "github.com/rumor-dev/rumor/gossip/") && filepath.Dir(f) == "."
			if strings.HasPrefix(path, "github.com/rumor-dev/rumor") && !own {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}

// freePort returns a port that was free on 127.0.0.1 for network ("tcp"
// or "udp") a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSecondNodeOnTheSameAddressFails: libp2p sets SO_REUSEPORT, so a
// second node on the same TCP or QUIC address would bind it too and the
// kernel would split the first one's incoming connections between them.
// The second New must fail instead, naming the address, even when its
// other addresses are free; the first node keeps working.
func TestSecondNodeOnTheSameAddressFails(t *testing.T) {
	for _, tc := range []struct{ name, network, format string }{
		{"tcp", "tcp", "/ip4/127.0.0.1/tcp/%d"},
		{"quic", "udp", "/ip4/127.0.0.1/udp/%d/quic-v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fmt.Sprintf(tc.format, freePort(t, tc.network))
			first := testConfig(t)
			first.Listen = []string{addr}
			a, _ := startNode(t, first)

			for _, listen := range [][]string{
				{addr},
				{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", addr}, // only the last one busy
			} {
				second := testConfig(t)
				second.Listen = listen
				n, err := New(context.Background(), second)
				if err == nil {
					_ = n.Close()
					t.Fatalf("second node listening on %v started; want an error", listen)
				}
				if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "gossip: listen "+addr+": ") ||
					!strings.Contains(err.Error(), "set listen to a free address") {
					t.Errorf("second New on %v: %v; want EADDRINUSE naming %s and the listen setting", listen, err, addr)
				}
			}

			// The first node still takes connections.
			b, _ := startNode(t, testConfig(t))
			ai, err := peer.AddrInfoFromString(a.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := b.h.Connect(context.Background(), *ai); err != nil {
				t.Fatalf("connect to the first node: %v", err)
			}
		})
	}
	checkNoGoroutines(t)
}

// TestLaneIsApartFromTheOtherTopics: the lane's topics run on a router of
// their own, on LaneProtocol: while every validation of a bulk topic is
// stalled and its queue overflows, a lane message is still validated and
// delivered.
func TestLaneIsApartFromTheOtherTopics(t *testing.T) {
	var stall atomic.Bool
	var stalled atomic.Int64
	release := make(chan struct{})
	cfgA, cfgB := testConfig(t, "svc", "bl"), testConfig(t, "svc", "bl")
	cfgA.Lane, cfgB.Lane = []string{"bl"}, []string{"bl"}
	cfgB.Validate = func(topic string, _ []byte, _ peer.ID, local bool) error {
		if topic == "svc" && !local && stall.Load() {
			stalled.Add(1)
			<-release
		}
		return nil
	}
	a, ca := startNode(t, cfgA)
	cfgB.Bootstrap = a.Addrs()
	b, cb := startNode(t, cfgB)
	t.Cleanup(func() { close(release) }) // before the nodes close
	for _, n := range []*Node{a, b} {
		if !slices.Contains(n.h.Mux().Protocols(), LaneProtocol) {
			t.Fatalf("%s does not speak %s: %v", n.ID().ShortString(), LaneProtocol, n.h.Mux().Protocols())
		}
	}
	waitMesh(t, "svc", [2]*collector{ca, cb})
	waitMesh(t, "bl", [2]*collector{ca, cb})

	stall.Store(true)
	ctx := context.Background()
	for i := range 2 * validateQueueSize {
		if err := a.Publish(ctx, "svc", fmt.Appendf(nil, "svc %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every worker of b's bulk router is held, and the svc messages behind
	// them queue (or overflow the queue).
	eventually(t, waitFor, "b to stall on svc", func() bool { return stalled.Load() >= int64(runtime.NumCPU()) })
	if err := a.Publish(ctx, "bl", []byte("bl 0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, "the bl message to reach b while svc stalls", func() bool { return cb.has(a.ID(), "bl 0") })
	if n := cb.count(a.ID(), "svc 0"); n != 0 {
		t.Fatalf("an svc message was delivered while its validation stalled")
	}
}

func TestLaneConfig(t *testing.T) {
	base := testConfig(t, "svc", "bl")
	for _, lane := range [][]string{{"kernel"}, {"bl", "bl"}} {
		cfg := base
		cfg.Lane = lane
		if err := cfg.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "Lane[") {
			t.Errorf("Lane %q: validate() = %v", lane, err)
		}
	}
	base.Lane = []string{"bl"}
	if err := base.withDefaults().validate(); err != nil {
		t.Errorf("Lane [bl]: %v", err)
	}
	// Only the other topics of a node with a lane are validated inline.
	for _, c := range []struct {
		lane   []string
		topic  string
		inline bool
	}{{nil, "svc", false}, {[]string{"bl"}, "bl", false}, {[]string{"bl"}, "svc", true}} {
		if got := len(ValidatorOptions(c.lane, c.topic)) > 0; got != c.inline {
			t.Errorf("ValidatorOptions(%q, %q): inline %v, want %v", c.lane, c.topic, got, c.inline)
		}
	}
}
