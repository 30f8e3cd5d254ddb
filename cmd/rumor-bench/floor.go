package main

// The floor of figure 1: bare go-libp2p-pubsub GossipSub on hosts set up as
// rumor's (gossip.HostOptions, gossip.PubSubOptions), with rumor's two
// routers (the priority lane's topics on one of their own,
// gossip.LaneOptions), carrying the same writes as the propagation run at
// the same N, timed the same way. What
// rumor adds above it (the store, the replica, batching, membership,
// anti-entropy) is the ratio rumor/floor; issue 17 sets the target p99
// ratio at 1.5.

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/gossip/redial"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/wire"
)

// floorTargetP99Ratio is issue 17's target: rumor's p99 propagation latency
// at most 1.5 times bare GossipSub's at the same N.
const floorTargetP99Ratio = 1.5

// floorCrypto says what signature work the floor does per message.
const floorCrypto = "the publisher signs each payload with ed25519 and every receiver's validator verifies it once (GossipSub messages unsigned, as rumor's)"

// floorParams configure the floor.
type floorParams struct {
	on bool
	// beat, if positive, makes every node publish one message on the node
	// topic that often, as rumor's per-node heartbeat does; 0 is off.
	beat time.Duration
	// maxPeers is how many ranked peers each node dials (rumor's
	// max_peers); 0 dials every node.
	maxPeers int
	// maxMessageBytes is rumor's max_message_bytes, for the frame limit.
	maxMessageBytes int
	// within bounds connecting and the topic announcements.
	within time.Duration
}

// FloorResult is the floor of figure 1 at one size: bare GossipSub with
// rumor's host and GossipSub settings, the same writes and the same timing.
type FloorResult struct {
	Nodes   int `json:"nodes"`
	Updates int `json:"updates"`
	Lost    int `json:"lost"`
	// PayloadBytes is the svc value of rumor's writes; MessageBytes is what
	// each floor message carries instead: the size of rumor's wire
	// envelope of one signed svc write with that value.
	PayloadBytes int    `json:"payload_bytes"`
	MessageBytes int    `json:"message_bytes"`
	SpacingMs    [2]int `json:"spacing_ms"`
	// Topics is how many GossipSub topics every node joined (one per crdt
	// namespace, as rumor's nodes); the writes go on svc. Lane names those
	// of them on a second router, as rumor's priority lane
	// (agent.GossipTopics, gossip.LaneOptions); svc is on the other one.
	Topics int      `json:"topics"`
	Lane   []string `json:"lane"`
	// Graph says how the hosts were connected; MaxPeers is the max_peers
	// it follows (0: every node), MinPeers the fewest connected peers a
	// node had when measuring began.
	Graph    string `json:"graph"`
	MaxPeers int    `json:"max_peers"`
	MinPeers int    `json:"min_peers"`
	// BeatMs is the per-node beat on the node topic, 0 when off.
	BeatMs int `json:"beat_ms"`
	// Crypto says what signature work each message costs.
	Crypto string  `json:"crypto"`
	FormMs float64 `json:"form_ms"`
	// Latency is from just before the writer signs and publishes until the
	// last other node's subscription delivered the message.
	Latency    benchstat.Summary `json:"latency"`
	CPUCores   float64           `json:"cpu_cores"`
	OtherCores float64           `json:"other_cores"`
	// SamplesMs lists every message's latency in publish order; -1 for one
	// that never reached every node.
	SamplesMs []float64 `json:"samples_ms"`
	// RumorP50Ratio and RumorP99Ratio are rumor's p50 and p99 (figure 1,
	// same N, same run) divided by the floor's; 0 when rumor was not
	// measured at this N. TargetP99Ratio is the most RumorP99Ratio should be.
	RumorP50Ratio  float64 `json:"rumor_p50_ratio,omitempty"`
	RumorP99Ratio  float64 `json:"rumor_p99_ratio,omitempty"`
	TargetP99Ratio float64 `json:"target_p99_ratio"`
}

// Kinds of floor payload.
const (
	floorTimed  byte = 1 // a timed write on svc
	floorWarmUp byte = 2 // an untimed warm-up write on svc
	floorBeat   byte = 3 // a beat on node
)

// floorHeader is kind (1 byte), writer index (4) and sequence number (8).
const floorHeader = 1 + 4 + 8

// floorKeys are the nodes' signing keys, by node index.
type floorKeys struct {
	priv []ed25519.PrivateKey
	pub  []ed25519.PublicKey
}

// payload returns a signed payload of size bytes (at least floorHeader
// plus a signature): kind, writer and seq, padding, and writer's ed25519
// signature over everything before it.
func (k *floorKeys) payload(kind byte, writer int, seq uint64, size int) []byte {
	b := make([]byte, size-ed25519.SignatureSize, size)
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(writer))
	binary.BigEndian.PutUint64(b[5:], seq)
	for i := floorHeader; i < len(b); i++ {
		b[i] = 'm'
	}
	return append(b, ed25519.Sign(k.priv[writer], b)...)
}

// check verifies a payload's signature by the writer it names, and returns
// its kind, writer and sequence number.
func (k *floorKeys) check(data []byte) (kind byte, writer int, seq uint64, err error) {
	if len(data) < floorHeader+ed25519.SignatureSize {
		return 0, 0, 0, fmt.Errorf("payload of %d bytes is too short", len(data))
	}
	body, sig := data[:len(data)-ed25519.SignatureSize], data[len(data)-ed25519.SignatureSize:]
	w := binary.BigEndian.Uint32(body[1:])
	if int64(w) >= int64(len(k.pub)) {
		return 0, 0, 0, fmt.Errorf("payload names writer %d of %d", w, len(k.pub))
	}
	if !ed25519.Verify(k.pub[w], body, sig) {
		return 0, 0, 0, errors.New("bad signature")
	}
	return body[0], int(w), binary.BigEndian.Uint64(body[5:]), nil
}

// floorKey names a tracked floor message.
func floorKey(kind byte, writer int, seq uint64) string {
	return fmt.Sprintf("%d/%d/%d", kind, writer, seq)
}

// rumorMessageBytes returns the size of the GossipSub payload rumor
// publishes for one svc write with a value of payload bytes: one delta,
// signed by its writer, in the wire envelope.
func rumorMessageBytes(payload int) (int, error) {
	k, _, err := identity.Generate()
	if err != nil {
		return 0, err
	}
	s, err := identity.NewSigner(k, "bench")
	if err != nil {
		return 0, err
	}
	req := servicePayload(payload)
	ds := []crdt.Delta{{
		Key: crdt.ServiceKey("bench", instanceName(0)), Op: crdt.OpPut,
		Stamp: crdt.Stamp{HLC: crdt.MakeHLC(time.Now().UnixMilli(), 0), Node: s.ID()},
		Value: crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags}),
	}}
	if err := s.Sign(ds); err != nil {
		return 0, err
	}
	b, err := wire.Encode(ds)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// floorNode is one host of the floor with its GossipSub routers and
// topics.
type floorNode struct {
	h      host.Host
	bulk   *pubsub.PubSub           // the router of the topics not in the lane
	lane   *pubsub.PubSub           // the priority lane's router; nil without a lane
	topics map[string]*pubsub.Topic // short name → topic
}

// floorGraph describes the connections floor nodes make for n and
// maxPeers, as rumor's would be.
func floorGraph(n, maxPeers int) string {
	if maxPeers <= 0 || n-1 <= maxPeers {
		return fmt.Sprintf("full mesh (as rumor's max_peers %d gives at N=%d)", maxPeers, n)
	}
	return fmt.Sprintf("each node dials its %d best-ranked peers (redial.PreferredPeers, rumor's redialer rank)", maxPeers)
}

// runFloor starts n bare GossipSub nodes with rumor's settings, connects
// them as rumor's nodes would be, and sends p.updates messages from a
// rotating writer with the propagation run's spacing (same seed), timing
// each from just before the writer signs it to the last other node's
// delivery.
func runFloor(ctx context.Context, n int, p params) (FloorResult, error) {
	fp := p.floor
	topics, lane := agent.GossipTopics()
	res := FloorResult{Nodes: n, Updates: p.updates, PayloadBytes: p.payload, Topics: len(topics), Lane: lane,
		SpacingMs: [2]int{int(p.spacingMin / time.Millisecond), int(p.spacingMax / time.Millisecond)},
		Graph:     floorGraph(n, fp.maxPeers), MaxPeers: fp.maxPeers, BeatMs: int(fp.beat / time.Millisecond),
		Crypto: floorCrypto, TargetP99Ratio: floorTargetP99Ratio}
	if n < 2 {
		return res, fmt.Errorf("the floor needs at least 2 nodes, got %d", n)
	}
	var err error
	if res.MessageBytes, err = rumorMessageBytes(p.payload); err != nil {
		return res, fmt.Errorf("size of rumor's message: %w", err)
	}
	res.MessageBytes = max(res.MessageBytes, floorHeader+ed25519.SignatureSize)
	began := time.Now()

	// Keys: the libp2p identities (as rumor's node keys) and the same keys
	// for payload signatures.
	keySrc := rand.NewChaCha8(seedBytes(p.cluster.seed, uint64(n)))
	keys := &floorKeys{}
	idents := make([]crypto.PrivKey, n)
	for i := range n {
		pub, priv, err := ed25519.GenerateKey(keySrc)
		if err != nil {
			return res, err
		}
		keys.priv, keys.pub = append(keys.priv, priv), append(keys.pub, pub)
		if idents[i], err = crypto.UnmarshalEd25519PrivateKey(priv); err != nil {
			return res, err
		}
	}

	nctx, cancel := context.WithCancel(ctx)
	var readers sync.WaitGroup
	nodes := make([]*floorNode, 0, n)
	defer func() {
		cancel()
		readers.Wait()
		for _, fn := range nodes {
			_ = fn.h.Close()
		}
	}()

	tr, warm := newTracker(), newTracker()
	for i := range n {
		fn, subs, err := startFloorNode(nctx, idents[i], keys, fp, topics, lane)
		if err != nil {
			return res, fmt.Errorf("start floor node %d of %d: %w", i, n, err)
		}
		nodes = append(nodes, fn)
		for _, sub := range subs {
			readers.Go(func() { floorRead(nctx, i, fn.h.ID(), sub, tr, warm) })
		}
	}

	if err := connectFloor(ctx, nodes, fp); err != nil {
		return res, err
	}
	res.FormMs = benchstat.Ms(time.Since(began))
	if fp.beat > 0 {
		for i, fn := range nodes {
			readers.Go(func() { floorBeats(nctx, i, n, fn, keys, fp.beat, res.MessageBytes) })
		}
	}
	if err := sleepCtx(ctx, p.cluster.settle); err != nil {
		return res, err
	}
	res.MinPeers = -1
	for _, fn := range nodes {
		if c := len(fn.h.Network().Peers()); res.MinPeers < 0 || c < res.MinPeers {
			res.MinPeers = c
		}
	}

	svc := string(crdt.NSService)
	publish := func(kind byte, w int, seq uint64) error {
		data := keys.payload(kind, w, seq, res.MessageBytes)
		if err := nodes[w].topics[svc].Publish(ctx, data); err != nil {
			return fmt.Errorf("publish on node %d: %w", w, err)
		}
		return nil
	}
	// Warm-up, not timed, as figure 1's: every node publishes once on svc.
	for w := range n {
		warm.begin(floorKey(floorWarmUp, w, 0), w, n)
		if err := publish(floorWarmUp, w, 0); err != nil {
			return res, err
		}
	}
	if err := waitWarm(ctx, warm, n, p.drain, "warm-up messages did not reach every node"); err != nil {
		return res, err
	}

	rng := rand.New(rand.NewPCG(p.cluster.seed, uint64(n))) // the propagation run's gaps
	meter := startCPUMeter()
	for i := range p.updates {
		w := i % n
		tr.begin(floorKey(floorTimed, w, uint64(i)), w, n)
		if err := publish(floorTimed, w, uint64(i)); err != nil {
			return res, err
		}
		gap := p.spacingMin
		if p.spacingMax > p.spacingMin {
			gap += time.Duration(rng.Int64N(int64(p.spacingMax - p.spacingMin)))
		}
		if err := sleepCtx(ctx, gap); err != nil {
			return res, err
		}
	}
	deadline := time.Now().Add(p.drain)
	for tr.outstanding() > 0 && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.Lost = tr.outstanding()
	res.CPUCores, res.OtherCores = meter.cores()
	res.Latency = benchstat.Summarize(tr.latencies())
	for i := range p.updates {
		res.SamplesMs = append(res.SamplesMs, -1)
		if d, ok := tr.latency(floorKey(floorTimed, i%n, uint64(i))); ok {
			res.SamplesMs[i] = math.Round(benchstat.Ms(d)*1000) / 1000
		}
	}
	return res, nil
}

// seedBytes makes a ChaCha8 seed of two numbers.
func seedBytes(a, b uint64) [32]byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], a)
	binary.LittleEndian.PutUint64(s[8:], b)
	copy(s[16:], "rumor-bench-flr")
	return s
}

// startFloorNode starts a node: a host with rumor's options listening on
// 127.0.0.1 TCP (as the in-process agents), GossipSub with rumor's options
// (and, when lane is not empty, a second router for lane's topics, as
// gossip.New starts them), and every topic joined with a validator that
// checks the payload's signature, registered with rumor's validator
// options, as rumor's nodes join them.
func startFloorNode(ctx context.Context, ident crypto.PrivKey, keys *floorKeys, fp floorParams, topics, lane []string) (*floorNode, []*pubsub.Subscription, error) {
	opts := append(gossip.HostOptions(gossip.Config{Identity: ident}, metrics.NewBandwidthCounter()),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*floorNode, []*pubsub.Subscription, error) {
		_ = h.Close()
		return nil, nil, err
	}
	fn := &floorNode{h: h, topics: make(map[string]*pubsub.Topic)}
	if fn.bulk, err = pubsub.NewGossipSub(ctx, h, gossip.PubSubOptions(fp.maxMessageBytes, 0)...); err != nil {
		return fail(err)
	}
	if len(lane) > 0 {
		opts := append(gossip.PubSubOptions(fp.maxMessageBytes, 0), gossip.LaneOptions()...)
		if fn.lane, err = pubsub.NewGossipSub(ctx, h, opts...); err != nil {
			return fail(err)
		}
	}
	self := h.ID()
	limit := fp.maxMessageBytes
	if limit == 0 {
		limit = gossip.DefaultMaxMessageBytes
	}
	validate := func(_ context.Context, src peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > limit {
			return pubsub.ValidationReject
		}
		if src == self {
			return pubsub.ValidationAccept // our own, as rumor's agent: judged when written
		}
		if _, _, _, err := keys.check(m.Data); err != nil {
			return pubsub.ValidationReject
		}
		return pubsub.ValidationAccept
	}
	var subs []*pubsub.Subscription
	for _, short := range topics {
		full := gossip.TopicName("bench", short)
		ps := fn.bulk
		if slices.Contains(lane, short) {
			ps = fn.lane
		}
		if err := ps.RegisterTopicValidator(full, validate, gossip.ValidatorOptions(lane, short)...); err != nil {
			return fail(err)
		}
		t, err := ps.Join(full)
		if err != nil {
			return fail(err)
		}
		sub, err := t.Subscribe(gossip.SubscribeOptions()...)
		if err != nil {
			return fail(err)
		}
		fn.topics[short] = t
		subs = append(subs, sub)
	}
	return fn, subs, nil
}

// floorRead takes node i's deliveries of one topic until ctx ends and
// tells the trackers about the svc messages from other nodes.
func floorRead(ctx context.Context, i int, self peer.ID, sub *pubsub.Subscription, tr, warm *tracker) {
	defer sub.Cancel()
	for {
		m, err := sub.Next(ctx)
		if err != nil || m == nil {
			return
		}
		at := time.Now()
		if m.ReceivedFrom == self {
			continue
		}
		body := m.Data
		if len(body) < floorHeader {
			continue
		}
		kind, w, seq := body[0], int(binary.BigEndian.Uint32(body[1:])), binary.BigEndian.Uint64(body[5:])
		switch kind {
		case floorTimed:
			tr.seen(floorKey(kind, w, seq), i, at)
		case floorWarmUp:
			warm.seen(floorKey(kind, w, seq), i, at)
		}
	}
}

// floorBeats publishes node i's beat on the node topic every beat until
// ctx ends, the first after a phase of i/n of a beat.
func floorBeats(ctx context.Context, i, n int, fn *floorNode, keys *floorKeys, beat time.Duration, size int) {
	if sleepCtx(ctx, beat*time.Duration(i)/time.Duration(n)) != nil {
		return
	}
	t := time.NewTicker(beat)
	defer t.Stop()
	topic := fn.topics[string(crdt.NSNode)]
	for seq := uint64(0); ; seq++ {
		if topic.Publish(ctx, keys.payload(floorBeat, i, seq, size)) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// connectFloor connects the nodes as rumor's would be (each dials its
// preferred peers) and waits until every node knows every connected peer's
// subscription to every topic.
func connectFloor(ctx context.Context, nodes []*floorNode, fp floorParams) error {
	ids := make([]peer.ID, len(nodes))
	byID := make(map[peer.ID]*floorNode, len(nodes))
	for i, fn := range nodes {
		ids[i] = fn.h.ID()
		byID[ids[i]] = fn
	}
	cctx, cancel := context.WithTimeout(ctx, fp.within)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, fn := range nodes {
		wg.Go(func() {
			for _, id := range redial.PreferredPeers(ids[i], ids, fp.maxPeers) {
				fn.h.ConnManager().Protect(id, "rumor-bench-floor") // as rumor's redialer keeps its ranked peers
				if fn.h.Network().Connectedness(id) == network.Connected {
					continue
				}
				if err := fn.h.Connect(cctx, peer.AddrInfo{ID: id, Addrs: byID[id].h.Addrs()}); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("node %d dials %s: %w", i, id, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for {
		ready := true
		for _, fn := range nodes {
			want := len(fn.h.Network().Peers())
			for _, t := range fn.topics {
				if len(t.ListPeers()) < want {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		if cctx.Err() != nil {
			return fmt.Errorf("floor nodes did not learn every connected peer's topics within %v", fp.within)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// runFloorFigure measures the floor at n after rumor's run at the same n,
// puts the ratios of rumor's percentiles to it in the result and adds it
// to the report.
func runFloorFigure(ctx context.Context, out io.Writer, n int, p params, rep *Report, fail func(string, error)) {
	if !p.floor.on || ctx.Err() != nil {
		return
	}
	beat := "off"
	if p.floor.beat > 0 {
		beat = p.floor.beat.String()
	}
	fmt.Fprintf(out, "[1] floor: %d bare GossipSub nodes (rumor's settings), %d messages, beat %s...\n", n, p.updates, beat)
	r, err := runFloor(ctx, n, p)
	if err == nil && r.Lost > 0 {
		err = fmt.Errorf("%d of %d messages never reached every node within %v", r.Lost, r.Updates, p.drain)
	}
	if err != nil {
		fail(fmt.Sprintf("floor N=%d", n), err)
	}
	if r.Latency.N == 0 && err != nil {
		return
	}
	for _, pr := range rep.Propagation {
		if pr.Agents == n && pr.Latency.N > 0 && r.Latency.N > 0 {
			r.RumorP50Ratio = pr.Latency.P50Ms / r.Latency.P50Ms
			r.RumorP99Ratio = pr.Latency.P99Ms / r.Latency.P99Ms
		}
	}
	rep.Floor = append(rep.Floor, r)
}

// printFloor prints the floor and the ratios of rumor to it.
func printFloor(tw io.Writer, rep Report, p params) {
	if !p.floor.on {
		fmt.Fprint(tw, "1f. Floor: (off: -floor=false)\n\n")
		return
	}
	topics, lane := agent.GossipTopics()
	routers := "one router"
	if len(lane) > 0 {
		routers = fmt.Sprintf("%s on a second router as rumor's priority lane (gossip.LaneOptions; the others validated inline)", strings.Join(lane, ", "))
	}
	fmt.Fprintf(tw, "1f. Floor: bare go-libp2p-pubsub GossipSub with rumor's host and GossipSub settings (gossip.HostOptions: TCP+Noise, libp2p's default connection manager;\n"+
		"    gossip.PubSubOptions: D/Dlo/Dhi %d/%d/%d, flood publish, rumor's queue sizes and message ids, unsigned messages), one topic per namespace (%d),\n"+
		"    %s; the same writes and spacing, on svc; %s;\n",
		gossip.Params(0).D, gossip.Params(0).Dlo, gossip.Params(0).Dhi, len(topics), routers, floorCrypto)
	if len(rep.Floor) == 0 {
		fmt.Fprint(tw, "    (not measured)\n\n")
		return
	}
	f0 := rep.Floor[0]
	beat := "off (rumor's per-node heartbeat is not mimicked; -floor-beat 1s adds one message per node per second on the node topic)"
	if f0.BeatMs > 0 {
		beat = fmt.Sprintf("on, one %d B message every %d ms from every node on the node topic (as rumor's per-node heartbeat)", f0.MessageBytes, f0.BeatMs)
	}
	fmt.Fprintf(tw, "    each message %d B (rumor's wire envelope of one signed %d B svc write); timed from before signing to the last other node's subscription delivery;\n"+
		"    beat: %s\n", f0.MessageBytes, f0.PayloadBytes, beat)
	fmt.Fprintln(tw, "N\tconnections\tlost\tfloor p50 ms\tfloor p99 ms\trumor p50 ms\trumor p99 ms\tp50 ratio\tp99 ratio\ttarget p99 ratio\tfloor CPU bench/others\t")
	for _, f := range rep.Floor {
		rumor50, rumor99, r50, r99, verdict := "-", "-", "-", "-", "-"
		for _, pr := range rep.Propagation {
			if pr.Agents == f.Nodes && pr.Latency.N > 0 {
				rumor50, rumor99 = benchstat.FmtMs(pr.Latency.P50Ms), benchstat.FmtMs(pr.Latency.P99Ms)
			}
		}
		if f.RumorP99Ratio > 0 {
			r50, r99 = fmt.Sprintf("%.2f", f.RumorP50Ratio), fmt.Sprintf("%.2f", f.RumorP99Ratio)
			verdict = "met"
			if f.RumorP99Ratio > f.TargetP99Ratio {
				verdict = "NOT met"
			}
		}
		graph := "full mesh"
		if f.MaxPeers > 0 && f.Nodes-1 > f.MaxPeers {
			graph = fmt.Sprintf("%d ranked", f.MaxPeers)
		}
		fmt.Fprintf(tw, "%d\t%s, min %d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t<= %.1f: %s\t%.2f / %.2f of %d\t\n", f.Nodes, graph, f.MinPeers, f.Lost,
			benchstat.FmtMs(f.Latency.P50Ms), benchstat.FmtMs(f.Latency.P99Ms), rumor50, rumor99, r50, r99, f.TargetP99Ratio, verdict,
			f.CPUCores, f.OtherCores, rep.Machine.NumCPU)
	}
	fmt.Fprintf(tw, "    connections: a full mesh where rumor's max_peers (%d) covers every other node, else each node dials its max_peers best-ranked (redial.PreferredPeers);\n"+
		"    ratio = rumor / floor at the same N in the same run\n\n", rep.Floor[0].MaxPeers)
}

// defaultFloorParams are the floor's settings for rumor's default config.
func defaultFloorParams(on bool, beat time.Duration) floorParams {
	d := config.DefaultConfig()
	return floorParams{on: on, beat: beat, maxPeers: d.MaxPeers, maxMessageBytes: d.MaxMessageBytes, within: 60 * time.Second}
}
