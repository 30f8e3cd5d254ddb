package main

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/crdt"
)

// floorTestParams are small, fast floor settings.
func floorTestParams(updates int) params {
	return params{
		updates: updates, spacingMin: 2 * time.Millisecond, spacingMax: 5 * time.Millisecond,
		payload: 200, drain: 10 * time.Second,
		cluster: clusterOptions{settle: 200 * time.Millisecond, seed: 1},
		floor:   defaultFloorParams(true, 0),
	}
}

// TestFloorDeliversEverything: three bare GossipSub nodes deliver every
// message to both other nodes, and the percentiles are sane.
func TestFloorDeliversEverything(t *testing.T) {
	const n, updates = 3, 40
	p := floorTestParams(updates)
	p.floor.beat = 50 * time.Millisecond // beats on the node topic must not count as svc deliveries
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := runFloor(ctx, n, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lost != 0 || r.Latency.N != updates || len(r.SamplesMs) != updates {
		t.Fatalf("lost %d, %d latencies and %d samples of %d messages", r.Lost, r.Latency.N, len(r.SamplesMs), updates)
	}
	l := r.Latency
	if !(l.P50Ms > 0 && l.P50Ms <= l.P99Ms && l.P99Ms <= l.MaxMs && l.MaxMs < 2000) {
		t.Errorf("latency %v: want 0 < p50 <= p99 <= max < 2 s", l)
	}
	for i, s := range r.SamplesMs {
		if s <= 0 || s > l.MaxMs+0.001 { // samples are rounded to the µs
			t.Errorf("sample %d = %v ms, outside (0, max %v]", i, s, l.MaxMs)
		}
	}
	if r.MinPeers != n-1 || !strings.HasPrefix(r.Graph, "full mesh") {
		t.Errorf("min peers %d, graph %q; want a full mesh of %d", r.MinPeers, r.Graph, n)
	}
	if r.Topics != len(crdt.Namespaces) || r.BeatMs != 50 || r.TargetP99Ratio != 1.5 {
		t.Errorf("topics %d, beat %d ms, target %v", r.Topics, r.BeatMs, r.TargetP99Ratio)
	}
	if _, lane := agent.GossipTopics(); len(lane) == 0 || !slices.Equal(r.Lane, lane) {
		t.Errorf("the floor's second router carries %q, want rumor's lane %q", r.Lane, lane)
	}
	if r.MessageBytes <= r.PayloadBytes {
		t.Errorf("message %d B is no larger than the %d B value it stands for (rumor's envelope adds key, stamp and cert)", r.MessageBytes, r.PayloadBytes)
	}
}

// TestFloorPayloadSignature: the floor's validator takes a payload signed
// by the writer it names, and nothing else.
func TestFloorPayloadSignature(t *testing.T) {
	keys := &floorKeys{}
	for range 2 {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys.priv, keys.pub = append(keys.priv, priv), append(keys.pub, pub)
	}
	good := keys.payload(floorTimed, 1, 77, 300)
	if len(good) != 300 {
		t.Fatalf("payload is %d bytes, want 300", len(good))
	}
	if kind, w, seq, err := keys.check(good); err != nil || kind != floorTimed || w != 1 || seq != 77 {
		t.Fatalf("check(good) = %d, %d, %d, %v", kind, w, seq, err)
	}
	tampered := append([]byte(nil), good...)
	tampered[floorHeader+3] ^= 1
	otherWriter := append([]byte(nil), good...)
	otherWriter[4] = 0 // names writer 0, signed by 1
	unknown := append([]byte(nil), good...)
	unknown[4] = 9
	for name, b := range map[string][]byte{"tampered": tampered, "other writer": otherWriter, "unknown writer": unknown, "short": good[:40]} {
		if _, _, _, err := keys.check(b); err == nil {
			t.Errorf("check accepted a %s payload", name)
		}
	}
}

// TestRumorMessageBytes: the floor's message is as large as rumor's wire
// message for one signed svc write, which grows with the value.
func TestRumorMessageBytes(t *testing.T) {
	small, err := rumorMessageBytes(200)
	if err != nil {
		t.Fatal(err)
	}
	large, err := rumorMessageBytes(1200)
	if err != nil {
		t.Fatal(err)
	}
	if small <= 200+ed25519.SignatureSize || large-small < 1000 || large-small > 1004 {
		t.Errorf("rumor message for 200 B: %d B, for 1200 B: %d B; want more than value+signature, and about 1000 B apart", small, large)
	}
}
