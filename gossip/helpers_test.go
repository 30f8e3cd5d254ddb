package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const waitFor = 15 * time.Second // generous deadline for anything network-bound

// testConfig is a loopback TCP config with fast redials and a fresh identity.
func testConfig(t *testing.T, topics ...string) Config {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) == 0 {
		topics = []string{"svc", "bl"}
	}
	return Config{
		Cluster:   "test",
		Topics:    topics,
		Listen:    []string{"/ip4/127.0.0.1/tcp/0"},
		Identity:  key,
		Rand:      rand.New(rand.NewPCG(1, 2)),
		RedialMin: 20 * time.Millisecond,
		RedialMax: 200 * time.Millisecond,
	}
}

// collector records everything a node delivers, until its Messages channel
// is closed.
type collector struct {
	n    *Node
	tr   *tracer
	mu   sync.Mutex
	msgs []Message
	done chan struct{}
}

// startNode starts a node with a tracer, closes it at cleanup and collects
// its messages.
func startNode(t *testing.T, cfg Config) (*Node, *collector) {
	t.Helper()
	tr := newTracer()
	cfg.pubsubOptions = append(slices.Clip(cfg.pubsubOptions), pubsubTracer(tr))
	cfg.deliver = true
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c := &collector{n: n, tr: tr, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for m := range n.Messages() {
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-c.done
	})
	return n, c
}

// snapshot returns the messages collected so far.
func (c *collector) snapshot() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// has reports whether a message with this payload, published by from,
// arrived. Messages name no author (their payload signs itself), so tests
// give each publisher payloads of its own and match on the payload.
func (c *collector) has(from peer.ID, data string) bool {
	return c.count(from, data) > 0
}

func (c *collector) count(_ peer.ID, data string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, m := range c.msgs {
		if string(m.Data) == data {
			k++
		}
	}
	return k
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	eventuallyDiag(t, timeout, what, cond, nil)
}

// eventuallyDiag is eventually with diagnostics: on timeout it reports what
// diag returns.
func eventuallyDiag(t *testing.T, timeout time.Duration, what string, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if diag != nil {
				msg = "\n" + diag()
			}
			t.Fatalf("timed out after %v waiting for %s%s", timeout, what, msg)
		}
		<-tick.C
	}
}

func connected(a, b *Node) bool {
	return a.h.Network().Connectedness(b.ID()) == network.Connected
}

// warmUp publishes fresh payloads from each of pubs, every few
// milliseconds, until every node in all has received one from every
// publisher other than itself: the meshes between them are then formed.
// It returns once they have; the warm-up messages stay in the collectors.
func warmUp(t *testing.T, topic string, pubs []*Node, all []*collector) {
	t.Helper()
	ctx := context.Background()
	sent := make(map[peer.ID][]string)
	got := func() bool {
		for _, p := range pubs {
			for _, c := range all {
				if c.n == p {
					continue
				}
				if !slices.ContainsFunc(sent[p.ID()], func(d string) bool { return c.has(p.ID(), d) }) {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; !got(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("warm-up on %q: meshes did not form within %v", topic, waitFor)
		}
		for _, p := range pubs {
			d := fmt.Sprintf("warm-%s-%d", p.ID().ShortString(), i)
			if err := p.Publish(ctx, topic, []byte(d)); err != nil {
				t.Fatalf("warm-up publish: %v", err)
			}
			sent[p.ID()] = append(sent[p.ID()], d)
		}
		<-tick.C
	}
}

// logRecorder is a slog handler that keeps the messages logged at info
// level and above.
type logRecorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func newLogRecorder() logRecorder { return logRecorder{mu: new(sync.Mutex), msgs: new([]string)} }

func (l logRecorder) logger() *slog.Logger { return slog.New(l) }

func (logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.msgs = append(*l.msgs, r.Message)
	return nil
}
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logRecorder) WithGroup(string) slog.Handler      { return l }

// lines returns the messages logged so far.
func (l logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(*l.msgs)
}

// count returns how many messages logged so far contain s.
func (l logRecorder) count(s string) int {
	k := 0
	for _, m := range l.lines() {
		if strings.Contains(m, s) {
			k++
		}
	}
	return k
}
