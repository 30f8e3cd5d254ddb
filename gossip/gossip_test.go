package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestChainDeliversOnceToEveryOtherNode chains five nodes through Bootstrap
// (0 ← 1 ← 2 ← 3 ← 4) and checks that a message published by any node
// reaches every other node exactly once, with the right topic, author and
// payload, and never comes back to its publisher.
func TestChainDeliversOnceToEveryOtherNode(t *testing.T) {
	const size = 5
	topics := []string{"svc", "bl"}
	nodes := make([]*Node, size)
	cols := make([]*collector, size)
	for i := range size {
		cfg := testConfig(t, topics...)
		if i > 0 {
			cfg.Bootstrap = nodes[i-1].Addrs()
		}
		nodes[i], cols[i] = startNode(t, cfg)
	}
	for _, topic := range topics {
		for i := 1; i < size; i++ {
			waitMesh(t, topic, [2]*collector{cols[i-1], cols[i]})
		}
	}

	ctx := context.Background()
	payload := func(i int, topic string) string { return fmt.Sprintf("%s from node %d", topic, i) }
	for i, n := range nodes {
		for _, topic := range topics {
			if err := n.Publish(ctx, topic, []byte(payload(i, topic))); err != nil {
				t.Fatalf("node %d publish %s: %v", i, topic, err)
			}
		}
	}
	for j, c := range cols {
		eventually(t, waitFor, fmt.Sprintf("node %d to receive every other node's messages", j), func() bool {
			for i, n := range nodes {
				for _, topic := range topics {
					if i != j && !c.has(n.ID(), payload(i, topic)) {
						return false
					}
				}
			}
			return true
		})
	}
	// A fence after the test messages gives late duplicates a chance to show.
	for i, n := range nodes {
		if err := n.Publish(ctx, "svc", []byte(fmt.Sprintf("fence %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for j, c := range cols {
		eventually(t, waitFor, fmt.Sprintf("node %d to receive the fences", j), func() bool {
			for i, n := range nodes {
				if i != j && !c.has(n.ID(), fmt.Sprintf("fence %d", i)) {
					return false
				}
			}
			return true
		})
	}

	for j, c := range cols {
		seen := make(map[string]int)
		for _, m := range c.snapshot() {
			if m.Via == nodes[j].ID() {
				t.Errorf("node %d received its own message %q", j, m.Data)
			}
			if !strings.HasPrefix(string(m.Data), m.Topic+" ") && !strings.HasPrefix(string(m.Data), "fence ") {
				t.Errorf("node %d: message %q delivered on topic %q", j, m.Data, m.Topic)
			}
			if m.Received.IsZero() {
				t.Errorf("node %d: message %q has no Received time", j, m.Data)
			}
			seen[m.Topic+"|"+string(m.Data)]++
		}
		for k, v := range seen {
			if v != 1 {
				t.Errorf("node %d received %q %d times", j, k, v)
			}
		}
		for i := range nodes {
			for _, topic := range topics {
				want := 1
				if i == j {
					want = 0
				}
				if got := seen[topic+"|"+payload(i, topic)]; got != want {
					t.Errorf("node %d received node %d's %s message %d times, want %d", j, i, topic, got, want)
				}
			}
		}
	}
	for j, n := range nodes {
		if r := n.Rejections(); len(r) != 0 {
			t.Errorf("node %d rejections = %v, want none", j, r)
		}
	}
	eventually(t, waitFor, "bandwidth counters to move", func() bool {
		in, out := nodes[2].Bandwidth()
		_, meshsub := nodes[2].BandwidthByProtocol()["/meshsub/1.3.0"]
		return in > 0 && out > 0 && meshsub
	})
	// Every node counted at least every other node's messages as
	// delivered, and none as rejected.
	for j, n := range nodes {
		tr := n.Traffic()
		if min := uint64((size - 1) * (len(topics) + 1)); tr.Delivered < min {
			t.Errorf("node %d: Traffic().Delivered = %d, want at least %d", j, tr.Delivered, min)
		}
		if tr.Rejected != 0 {
			t.Errorf("node %d: Traffic().Rejected = %d", j, tr.Rejected)
		}
	}
}

// TestValidatorRejectsIgnoresAndCounts sends payloads that two receivers'
// validators refuse in every way and checks that none is delivered and each
// is counted under its reason.
func TestValidatorRejectsIgnoresAndCounts(t *testing.T) {
	validate := func(topic string, data []byte, _ peer.ID, _ bool) error {
		switch {
		case bytes.HasPrefix(data, []byte("bad")):
			return Reject("bad-prefix", errors.New("starts with bad"))
		case bytes.HasPrefix(data, []byte("old")):
			return Ignore("stale", nil)
		case bytes.HasPrefix(data, []byte("junk")):
			return errors.New("undecodable")
		case bytes.HasPrefix(data, []byte("boom")):
			panic("validator bug")
		}
		return nil
	}
	// The sender accepts anything up to 1 MiB; the receivers are strict.
	sender, senderCol := startNode(t, testConfig(t))
	var recv []*Node
	var cols []*collector
	for range 2 {
		cfg := testConfig(t)
		cfg.Bootstrap = sender.Addrs()
		cfg.MaxMessageBytes = 1024
		cfg.Validate = validate
		n, c := startNode(t, cfg)
		recv = append(recv, n)
		cols = append(cols, c)
	}
	waitMesh(t, "svc", [2]*collector{senderCol, cols[0]}, [2]*collector{senderCol, cols[1]})

	ctx := context.Background()
	refused := map[string]string{
		"bad payload":                      "bad-prefix",
		"old payload":                      "stale",
		"junk payload":                     ReasonInvalid,
		"boom payload":                     ReasonPanic,
		strings.Repeat("x", 1025):          ReasonOversized,
		"bad " + strings.Repeat("y", 2000): ReasonOversized, // size is checked first
	}
	want := make(map[string]uint64)
	for data, reason := range refused {
		if err := sender.Publish(ctx, "svc", []byte(data)); err != nil {
			t.Fatalf("publish %.10q: %v", data, err)
		}
		want[reason]++
	}
	if err := sender.Publish(ctx, "svc", []byte("fine")); err != nil {
		t.Fatal(err)
	}
	for i, n := range recv {
		eventuallyDiag(t, waitFor, fmt.Sprintf("receiver %d to count %v", i, want), func() bool {
			return maps.Equal(n.Rejections(), want) && cols[i].has(sender.ID(), "fine")
		}, func() string {
			return fmt.Sprintf("receiver %d counts %v\nsender trace:%v\nreceiver trace:%v", i, n.Rejections(), senderCol.tr, cols[i].tr)
		})
		msgs := cols[i].snapshot()
		if len(msgs) != 1 {
			t.Errorf("receiver %d got %d messages, want only \"fine\"", i, len(msgs))
		}
	}
	if r := sender.Rejections(); len(r) != 0 {
		t.Errorf("sender rejections = %v, want none", r)
	}

	// A receiver's own refused publications fail Publish and are not counted.
	r := recv[0]
	err := r.Publish(ctx, "svc", []byte("bad own"))
	if reason, ok := ReasonOf(err); !ok || reason != "bad-prefix" || !strings.HasPrefix(err.Error(), "gossip: ") ||
		!strings.Contains(err.Error(), "starts with bad") {
		t.Errorf("Publish(bad) = %v, want the bad-prefix rejection", err)
	}
	if reason, _ := ReasonOf(r.Publish(ctx, "svc", []byte("old own"))); reason != "stale" {
		t.Errorf("Publish(old): reason %q, want stale", reason)
	}
	if reason, _ := ReasonOf(r.Publish(ctx, "svc", []byte("junk own"))); reason != ReasonInvalid {
		t.Errorf("Publish(junk): reason %q, want %s", reason, ReasonInvalid)
	}
	if err := r.Publish(ctx, "svc", make([]byte, 1025)); !errors.Is(err, ErrOversized) {
		t.Errorf("Publish(oversized) = %v, want ErrOversized", err)
	}
	if err := r.Publish(ctx, "nope", []byte("x")); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("Publish(unknown topic) = %v, want ErrUnknownTopic", err)
	}
	if got := r.Rejections(); !maps.Equal(got, want) {
		t.Errorf("own refusals were counted: %v, want %v", got, want)
	}
}

// TestQUIC checks that two nodes listening on QUIC only find each other
// and exchange messages.
func TestQUIC(t *testing.T) {
	cfgA := testConfig(t)
	cfgA.Listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	a, colA := startNode(t, cfgA)
	cfgB := testConfig(t)
	cfgB.Listen = cfgA.Listen
	cfgB.Bootstrap = a.Addrs()
	b, colB := startNode(t, cfgB)
	for _, addr := range a.Addrs() {
		if !strings.Contains(addr, "/quic-v1/p2p/") {
			t.Errorf("address %s is not QUIC", addr)
		}
	}
	eventually(t, waitFor, "QUIC connection", func() bool { return connected(b, a) })
	warmUp(t, "bl", []*Node{a, b}, []*collector{colA, colB})
}

// TestMessagesBlockWithoutLoss publishes more than the node's delivery
// buffer while the consumer is not reading, then reads: nothing is lost.
func TestMessagesBlockWithoutLoss(t *testing.T) {
	a, colA := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = a.Addrs()
	tr := newTracer()
	cfg.pubsubOptions = append(cfg.pubsubOptions, pubsubTracer(tr))
	cfg.deliver = true
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitMesh(t, "svc", [2]*collector{colA, {n: b, tr: tr}})

	ctx := context.Background()
	const total = messagesBuffer + 200 // beyond our buffer, within GossipSub's
	for i := range total {
		if err := a.Publish(ctx, "svc", []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := make(map[string]bool)
	timeout := time.After(waitFor)
	for len(got) < total {
		select {
		case m := <-b.Messages():
			got[string(m.Data)] = true
		case <-timeout:
			var missing []int
			for i := range total {
				if !got[fmt.Sprintf("m%d", i)] {
					missing = append(missing, i)
				}
			}
			t.Fatalf("received %d of %d messages, missing %v\na:%v\nb:%v", len(got), total, missing, colA.tr, tr)
		}
	}
}
