package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"

	"github.com/rumor-dev/rumor/gossip/redial"
)

// Queue sizes. go-libp2p-pubsub's defaults (32) lose most messages of an
// unpaced publisher; see DESIGN.md, "Wire".
const (
	peerOutboundQueueSize = 1024
	validateQueueSize     = 1024
	subscriptionBuffer    = 1024
	messagesBuffer        = 256
)

// DefaultMeshDegree is GossipSub's mesh degree D when Config.MeshDegree
// is 0: each node forwards a message to about 4 mesh peers (3 to 6). A
// write first goes from its publisher to every connected peer (flood
// publishing, below), then along the mesh, and the degree sets how many
// mesh hops a large cluster takes. At 300 agents in three regions (make
// sim-scale, 0.5 % loss) a write reached every agent with p99 920 ms at
// degree 3 (2..4; three or four hops, and a lost packet's retransmission
// on the slowest), 290 ms at 4 (3..6) and 240 ms at 6 (4..8). In a small
// cluster the mesh is every peer, and each receiver gets more copies
// (IDONTWANT, sent for messages of 1 KiB and more, arrives too late on a
// busy host to stop most): 6 agents under load (rumor-bench figure 2)
// received 530-650 B per 200 B update at degree 3, 780-810 B at 4 and
// 880-900 B at 6, and applied 8 % fewer updates a second at 4 or 6 than
// at 3. A few hosts in one region can set mesh_degree 3; a fleet of
// thousands, 6.
const DefaultMeshDegree = 4

// LaneProtocol is the protocol of the priority lane's GossipSub router
// (Config.Lane): GossipSub v1.2 under a name of its own, so that its
// streams, queues and validation are apart from the other topics' router,
// which speaks GossipSub's usual protocols.
const LaneProtocol = protocol.ID("/rumor/lane/meshsub/1.2.0")

// laneFeatures are GossipSub v1.2's features, for LaneProtocol.
func laneFeatures(feat pubsub.GossipSubFeature, proto protocol.ID) bool {
	if proto != LaneProtocol {
		return false
	}
	switch feat {
	case pubsub.GossipSubFeatureMesh, pubsub.GossipSubFeaturePX, pubsub.GossipSubFeatureIdontwant:
		return true
	}
	return false
}

// Params returns the GossipSub parameters of rumor's nodes for a mesh
// degree d (0: DefaultMeshDegree): GossipSub's defaults with D = d, Dlo =
// d - d/3 and Dhi = d + d/2 (3: 2..4; 4: 3..6; 6: 4..9), no outbound quota
// (Dout 0) and Dscore Dlo. A fresh copy each call. Both routers of a node with a
// lane use them.
func Params(d int) pubsub.GossipSubParams {
	if d <= 0 {
		d = DefaultMeshDegree
	}
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi = d, d-d/3, d+d/2
	p.Dout = 0       // must stay below Dlo and D/2; rumor does not score peers
	p.Dscore = p.Dlo // at most Dhi
	return p
}

// Message is a validated payload received from another peer (delivered
// only to the package's own tests: the agent consumes messages in
// Config.Validate).
type Message struct {
	Topic    string    // short topic name, as in Config.Topics
	Via      peer.ID   // the peer this node received it from (not its author: messages are unsigned, their payload signs itself)
	Data     []byte    // payload
	Received time.Time // when this node took it off the topic
}

// Node is a libp2p host with one GossipSub topic per configured name, on
// one of two routers (the priority lane's, Config.Lane, and the others'),
// and a redialer that keeps known peers connected. Its methods are safe
// for concurrent use.
type Node struct {
	cfg  Config
	log  *slog.Logger
	h    host.Host      // the libp2p host; the redialer alone dials through it
	nd   noDialHost     // h for everyone else: GossipSub, the streams of OpenStream
	bulk *pubsub.PubSub // the router of the topics not in the lane
	lane *pubsub.PubSub // the priority lane's router; nil when Config.Lane is empty
	bwc  *metrics.BandwidthCounter
	self peer.ID

	topics map[string]*pubsub.Topic // short name → topic; read-only after New
	msgs   chan Message
	red    *redial.Redialer // the only one that dials

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	rejMu sync.Mutex
	rej   map[string]uint64

	gate *allowGater // Config.AllowPeers; open when the list is empty

	mdns *discovery // Config.MDNS; nil when off

	traffic trafficTracer
}

// localResult carries the verdict on our own published message back from
// the validator to Publish, which runs it synchronously.
type localResult struct{ err error }

// TopicName returns the GossipSub topic name of a short topic name in a
// cluster: "/rumor/<cluster>/<topic>/1".
func TopicName(cluster, topic string) string {
	return "/rumor/" + cluster + "/" + topic + "/1"
}

// New starts a libp2p host and GossipSub, joins cfg.Topics and starts the
// goroutines that read the topics and keep known peers connected; it does not
// wait for any peer. ctx bounds start-up only: the node runs until Close. On
// error everything started is released.
func New(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gossip: start: %w", err)
	}

	self, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("gossip: config: Identity: %w", err)
	}
	bwc := metrics.NewBandwidthCounter()
	opts := append(HostOptions(cfg, bwc), cfg.HostOptions...)
	// Installed even without a list, so that SetAllowPeers can add one;
	// after HostOptions, so that it chains the gater they set, if any.
	gate := newAllowGater(self, cfg.AllowPeers, cfg.Logger)
	opts = append(opts, gate.option())
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("gossip: start host: %w", err)
	}

	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{
		cfg:    cfg,
		log:    cfg.Logger,
		h:      h,
		nd:     noDialHost{h},
		bwc:    bwc,
		self:   h.ID(),
		gate:   gate,
		topics: make(map[string]*pubsub.Topic, len(cfg.Topics)),
		msgs:   make(chan Message, messagesBuffer),
		cancel: cancel,
		rej:    make(map[string]uint64),
	}
	fail := func(err error) (*Node, error) {
		cancel() // stops GossipSub; no goroutine of ours runs yet
		_ = h.Close()
		return nil, err
	}
	n.red, err = redial.New(h, redial.Config{
		Bootstrap:   cfg.Bootstrap,
		Min:         cfg.RedialMin,
		Max:         cfg.RedialMax,
		DialTimeout: cfg.DialTimeout,
		MaxPeers:    cfg.MaxPeers,
		Resolver:    cfg.Resolver,
		Allowed:     gate.allowed,
		Logger:      cfg.Logger,
		Rand:        cfg.Rand,
	})
	if err != nil {
		return fail(fmt.Errorf("gossip: %w", err))
	}
	// Before listening: no inbound connection goes unseen.
	h.Network().Notify(n.red.Inbound())
	if err := listen(h, cfg.Listen); err != nil {
		return fail(err)
	}

	// Both routers get rumor's GossipSub options (PubSubOptions: Params,
	// queue sizes, message ids, flood publishing), the node's logger and
	// traffic counters; the lane's also LaneOptions.
	psOpts := func(extra ...pubsub.Option) []pubsub.Option {
		opts := append(PubSubOptions(cfg.MaxMessageBytes, cfg.MeshDegree),
			pubsub.WithLogger(cfg.Logger.With("component", "pubsub")),
			pubsub.WithRawTracer(&n.traffic),
		)
		opts = append(opts, extra...)
		return append(opts, cfg.pubsubOptions...)
	}
	n.bulk, err = pubsub.NewGossipSub(nctx, n.nd, psOpts()...)
	if err != nil {
		return fail(fmt.Errorf("gossip: start gossipsub: %w", err))
	}
	if len(cfg.Lane) > 0 {
		// The same options, on a protocol of its own: its streams,
		// queues and validation are apart from the bulk router's.
		n.lane, err = pubsub.NewGossipSub(nctx, n.nd, psOpts(LaneOptions()...)...)
		if err != nil {
			return fail(fmt.Errorf("gossip: start the lane's gossipsub: %w", err))
		}
	}
	subs := make([]*pubsub.Subscription, 0, len(cfg.Topics))
	for _, short := range cfg.Topics {
		full := TopicName(cfg.Cluster, short)
		ps := n.bulk
		if slices.Contains(cfg.Lane, short) {
			ps = n.lane
		}
		if err := ps.RegisterTopicValidator(full, n.validator(short), ValidatorOptions(cfg.Lane, short)...); err != nil {
			return fail(fmt.Errorf("gossip: register validator for %s: %w", full, err))
		}
		t, err := ps.Join(full)
		if err != nil {
			return fail(fmt.Errorf("gossip: join %s: %w", full, err))
		}
		sub, err := t.Subscribe(SubscribeOptions()...)
		if err != nil {
			return fail(fmt.Errorf("gossip: subscribe %s: %w", full, err))
		}
		n.topics[short] = t
		subs = append(subs, sub)
	}

	for i, sub := range subs {
		short := cfg.Topics[i]
		n.wg.Go(func() { n.read(nctx, short, sub) })
	}
	n.wg.Go(func() { n.red.Run(nctx) })
	if cfg.MDNS {
		n.mdns = &discovery{n: n}
		if err := n.mdns.start(); err != nil {
			n.mdns = nil
			_ = n.Close()
			return nil, err
		}
	}
	n.log.Info("gossip: started", "id", n.self, "addrs", n.Addrs(), "topics", cfg.Topics, "bootstrap", len(cfg.Bootstrap), "mdns", cfg.MDNS)
	return n, nil
}

// HostOptions returns the libp2p options [New] starts a node's host with,
// before its connection gater and cfg.HostOptions: cfg.Identity, Noise, no
// relay, cfg.PSK's private network if set, and cfg.Transports or else TCP
// without SO_REUSEPORT and (without a PSK) QUIC; cfg.Resolver for DNS
// names if set; bytes are counted by bwc unless it is nil. Everything else is libp2p's default, such as the
// connection manager (low 160, high 192) and the resource manager. The
// options listen nowhere: New listens on cfg.Listen once the host is up,
// and another user of these options adds libp2p.ListenAddrStrings after
// them. Benchmarks use them to measure bare GossipSub on rumor's hosts.
func HostOptions(cfg Config, bwc *metrics.BandwidthCounter) []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		// New listens on each address after start, one at a time, so that
		// each failure is an error: libp2p starts if any one address works.
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.DisableRelay(),
	}
	if bwc != nil {
		opts = append(opts, libp2p.BandwidthReporter(bwc))
	}
	if cfg.Resolver != nil {
		opts = append(opts, libp2p.MultiaddrResolver(swarm.ResolverFromMaDNS{Resolver: cfg.Resolver}))
	}
	if cfg.PSK != nil {
		opts = append(opts, libp2p.PrivateNetwork(cfg.PSK))
	}
	switch {
	case cfg.Transports != nil:
		opts = append(opts, cfg.Transports...)
	case cfg.PSK != nil:
		opts = append(opts, tcpTransport)
	default:
		opts = append(opts, tcpTransport, libp2p.QUICReuse(newQUICConnManager), libp2p.Transport(quic.NewTransport))
	}
	return opts
}

// PubSubOptions returns the GossipSub options [New] starts GossipSub with
// for payloads of up to maxMessageBytes (0: [DefaultMaxMessageBytes]) and
// a mesh degree (0: [DefaultMeshDegree]),
// except its logger and its traffic tracer: no GossipSub signatures
// (StrictNoSign), messages named by the SHA-256 of topic and payload,
// [Params], flood publishing, rumor's queue sizes and frame limit. New
// registers each topic's validator with [ValidatorOptions] and subscribes
// with [SubscribeOptions]. A node with a lane ([Config.Lane]) starts a
// second router, for the lane's topics, with these options and
// [LaneOptions].
func PubSubOptions(maxMessageBytes, meshDegree int) []pubsub.Option {
	if maxMessageBytes == 0 {
		maxMessageBytes = DefaultMaxMessageBytes
	}
	return []pubsub.Option{
		// Messages carry no GossipSub signature: their payload is a batch
		// of deltas signed by their writer, which every receiver verifies
		// (Config.Validate), so a second signature would only say which
		// peer published the bytes, at the cost of a signature and a
		// verification per message and hop. Messages are named by the
		// hash of their topic and content, so each is seen (and its
		// signature verified) once.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithGossipSubParams(Params(meshDegree)),
		// Our own messages go to every connected topic peer, not only to the
		// mesh (GossipSub v1.1's recommended default, off in this library):
		// right after a peer connects or reconnects it is not in the mesh
		// until a later heartbeat, and a message published in that window
		// would otherwise reach it only through anti-entropy (the IHAVE
		// gossip of that heartbeat skips it: by then it is in the mesh).
		// With the small mesh of Params this costs a receiver ~0.4 copy more.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerOutboundQueueSize(peerOutboundQueueSize),
		pubsub.WithValidateQueueSize(validateQueueSize),
		pubsub.WithMaxMessageSize(2*maxMessageBytes + 64<<10),
	}
}

// LaneOptions returns the GossipSub options the priority lane's router
// ([Config.Lane]) starts with after [PubSubOptions]: it speaks
// [LaneProtocol] alone, so that its streams, queues and validation are
// apart from the other router's. Both routers thus share rumor's settings
// ([Params], queue sizes, message ids, flood publishing).
func LaneOptions() []pubsub.Option {
	return []pubsub.Option{pubsub.WithGossipSubProtocols([]protocol.ID{LaneProtocol}, laneFeatures)}
}

// Protocols returns the GossipSub protocol ids an agent speaks: its usual
// router's (go-libp2p-pubsub's defaults, newest first), then LaneProtocol.
func Protocols() []protocol.ID {
	return append(slices.Clone(pubsub.GossipSubDefaultProtocols), LaneProtocol)
}

// ValidatorOptions returns the options [New] registers the validator of
// topic with, on a node whose lane is lane ([Config.Lane]). Without a
// lane, and for the lane's topics: GossipSub's defaults (none: a
// goroutine per message, default concurrency and timeout). With a lane,
// the other topics are validated inline, on their router's workers (one
// per CPU), rather than in a goroutine per message (up to 1024 per
// topic): a flood then waits in the router's validation queue (1024
// messages; GossipSub drops what overflows it, as it drops what overflows
// the goroutines' throttle), not as runnable goroutines that the lane's
// would queue behind for the CPU.
func ValidatorOptions(lane []string, topic string) []pubsub.ValidatorOpt {
	if len(lane) == 0 || slices.Contains(lane, topic) {
		return nil
	}
	return []pubsub.ValidatorOpt{pubsub.WithValidatorInline(true)}
}

// SubscribeOptions returns the options [New] subscribes to each topic
// with: a buffer of 1024 messages.
func SubscribeOptions() []pubsub.SubOpt {
	return []pubsub.SubOpt{pubsub.WithBufferSize(subscriptionBuffer)}
}

// tcpTransport is TCP without SO_REUSEPORT (libp2p's default sets it on TCP
// and QUIC sockets): a second node on the same address fails to bind,
// instead of sharing the port and getting a random half of the first one's
// connections.
var tcpTransport = libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport())

// messageID names a message by the SHA-256 of its topic and payload.
func messageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.Data)
	return string(h.Sum(nil))
}

// listen makes h listen on every address, and fails on the first one it
// cannot bind, naming it.
func listen(h host.Host, addrs []string) error {
	sw, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error })
	if !ok {
		return fmt.Errorf("gossip: listen: the libp2p network is a %T, which cannot listen on one address at a time", h.Network())
	}
	for i, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("gossip: config: Listen[%d] %q: %w", i, s, err) // validate checked it
		}
		if err := sw.AddListenAddr(a); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("gossip: listen %s: %w (another program, perhaps another agent on this host, is bound to it: set listen to a free address)", s, err)
			}
			return fmt.Errorf("gossip: listen %s: %w (check the listen setting)", s, err)
		}
	}
	return nil
}

// newQUICConnManager is the QUIC connection manager that libp2p makes by
// default (inbound connections are accounted to the resource manager from
// the start, which also decides when to verify source addresses), but
// with SO_REUSEPORT off: a second node on the same UDP address fails to
// bind. Dials then use a socket of their own instead of the listener's.
func newQUICConnManager(key quicgo.StatelessResetKey, tokenKey quicgo.TokenGeneratorKey, rcmgr network.ResourceManager) (*quicreuse.ConnManager, error) {
	return quicreuse.NewConnManager(key, tokenKey,
		quicreuse.DisableReuseport(),
		quicreuse.ConnContext(func(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quicgo.Version1)
			if err != nil {
				addr = nil // the resource manager decides
			}
			scope, err := rcmgr.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(rcmgr.VerifySourceAddress),
	)
}

// read moves validated messages of one topic from other peers to n.msgs,
// blocking while the consumer is slow, until ctx is cancelled.
func (n *Node) read(ctx context.Context, short string, sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		m, err := sub.Next(ctx)
		if err != nil || m == nil {
			return
		}
		if m.ReceivedFrom == n.self || !n.cfg.deliver {
			continue // our own publication, or consumed by Validate
		}
		msg := Message{
			Topic:    short,
			Via:      m.ReceivedFrom,
			Data:     m.Data,
			Received: time.Now(),
		}
		select {
		case n.msgs <- msg:
		case <-ctx.Done():
			return
		}
	}
}

// validator returns the GossipSub validator of one topic. It runs on
// GossipSub's validation goroutines, and synchronously inside Publish for
// our own messages.
func (n *Node) validator(short string) pubsub.ValidatorEx {
	return func(_ context.Context, src peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		var v *verdict
		if len(m.Data) > n.cfg.MaxMessageBytes {
			v = &verdict{result: pubsub.ValidationReject, reason: ReasonOversized,
				err: fmt.Errorf("payload of %d bytes exceeds %d", len(m.Data), n.cfg.MaxMessageBytes)}
		} else if n.cfg.Validate != nil {
			_, local := m.ValidatorData.(*localResult)
			if err := n.callValidate(short, m.Data, src, local && src == n.self); err != nil {
				v = asVerdict(err)
			}
		}
		if v == nil {
			return pubsub.ValidationAccept
		}
		if lr, ok := m.ValidatorData.(*localResult); ok && src == n.self {
			// Our own publication: Publish reports it; it is no peer's fault.
			lr.err = v
			return v.result
		}
		n.rejMu.Lock()
		n.rej[v.reason]++
		n.rejMu.Unlock()
		n.log.Debug("gossip: message refused", "topic", short, "via", src, "reason", v.reason, "err", v.err)
		return v.result
	}
}

// callValidate calls cfg.Validate, turning a panic into a rejection so that
// one bad payload cannot bring the node down.
func (n *Node) callValidate(short string, data []byte, via peer.ID, local bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("gossip: Validate panicked", "topic", short, "via", via, "panic", p)
			err = Reject(ReasonPanic, fmt.Errorf("panic: %v", p))
		}
	}()
	return n.cfg.Validate(short, data, via, local)
}

// Publish signs data and sends it on the topic with the given short name.
// Config.Validate runs on the payload first; if it refuses it, Publish
// returns an error from which [ReasonOf] recovers the reason and errors.Is
// matches the validator's cause, and the refusal is not counted in
// Rejections. Publish returns once the message is queued for sending: it does
// not wait for peers, and a message published while no peer is connected is
// lost (anti-entropy is the cure). It may be called from any goroutine.
func (n *Node) Publish(ctx context.Context, topic string, data []byte) error {
	if n.closed.Load() {
		return ErrClosed
	}
	t, ok := n.topics[topic]
	if !ok {
		return fmt.Errorf("gossip: publish %q: %w", topic, ErrUnknownTopic)
	}
	if len(data) > n.cfg.MaxMessageBytes {
		return fmt.Errorf("gossip: publish %q: %d bytes, limit %d: %w", topic, len(data), n.cfg.MaxMessageBytes, ErrOversized)
	}
	lr := new(localResult)
	if err := t.Publish(ctx, data, pubsub.WithValidatorData(lr)); err != nil {
		switch {
		case lr.err != nil:
			return fmt.Errorf("gossip: publish %q: %w", topic, lr.err)
		case n.closed.Load():
			return ErrClosed
		}
		return fmt.Errorf("gossip: publish %q: %w", topic, err)
	}
	return nil
}

// Messages returns the channel of validated messages from other peers, on
// all topics. Our own publications are not on it (GossipSub also drops
// messages signed with our key that come back from peers, such as those of
// an earlier run with the same identity). Messages are not dropped when the
// consumer is slow: the topic readers wait, and GossipSub's per-topic buffer
// (1024 messages) absorbs bursts until it overflows. Close closes the
// channel.
func (n *Node) Messages() <-chan Message { return n.msgs }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.self }

// Addrs returns the node's listen addresses with a /p2p/<id> suffix, in a
// form another node can use as Config.Bootstrap.
func (n *Node) Addrs() []string {
	suffix, err := ma.NewComponent("p2p", n.self.String())
	if err != nil {
		return nil
	}
	addrs := n.h.Addrs()
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Encapsulate(suffix.Multiaddr()).String())
	}
	return out
}

// AddPeer makes ai, a peer heard of from other nodes, a known peer: it is
// dialled now and redialled with backoff whenever disconnected, for the
// life of the node. Until it has been seen connected it is a stranger (its
// addresses may be somebody else's): dials to strangers are rate limited,
// 8 at once and then 4 a second over all of them, and a stranger whose
// dials fail backs off fourfold per failure up to
// [redial.RefusedMax]. Calling it again for a known peer adds any new
// addresses. A peer not found before is found by [redial.FoundGossip]. It
// is a no-op after Close and for the node's own ID.
func (n *Node) AddPeer(ai peer.AddrInfo) { n.addPeer(ai, redial.FoundGossip) }

// addPeer is AddPeer for a peer found by how.
func (n *Node) addPeer(ai peer.AddrInfo, how redial.Found) {
	if ai.ID == n.self || n.closed.Load() {
		return
	}
	n.red.Add(ai, how)
}

// TopicPeers returns the peers known to be subscribed to topic (a short
// name): those a publication on it goes to directly. A connected peer is
// not among them until its subscription announcement has arrived.
func (n *Node) TopicPeers(topic string) []peer.ID {
	t, ok := n.topics[topic]
	if !ok {
		return nil
	}
	return t.ListPeers()
}

// Found returns how the node first found peer id: by its join list
// ([redial.FoundJoin], [redial.FoundDNS]), by mDNS, from other nodes, or
// because it connected to us; "" for a peer it never knew, and for itself.
func (n *Node) Found(id peer.ID) redial.Found { return n.red.Found(id) }

// Peers returns the peers the node is connected to now.
func (n *Node) Peers() []peer.ID { return n.h.Network().Peers() }

// Rejections returns a copy of the count of messages from other peers that
// the validator rejected or ignored, by reason.
func (n *Node) Rejections() map[string]uint64 {
	n.rejMu.Lock()
	defer n.rejMu.Unlock()
	return maps.Clone(n.rej)
}

// Refused returns how many connections and dials the Config.AllowPeers
// gater refused because the peer is not on the list (0 without a list).
func (n *Node) Refused() uint64 { return n.gate.refused.Load() }

// SetAllowPeers replaces Config.AllowPeers while the node runs: from now on
// only the listed peers (and the node itself) may connect, or any peer if
// allow is empty. Connections open to peers no longer listed are closed,
// and returned; known peers that are now listed are dialled.
func (n *Node) SetAllowPeers(allow []peer.ID) (closed []peer.ID) {
	n.gate.set(allow)
	n.red.Poke()
	for _, p := range n.h.Network().Peers() {
		if !n.gate.allowed(p) {
			_ = n.h.Network().ClosePeer(p)
			closed = append(closed, p)
		}
	}
	return closed
}

// Bandwidth returns the total bytes received and sent by the host, over all
// protocols. The totals are updated about once a second.
func (n *Node) Bandwidth() (in, out int64) {
	s := n.bwc.GetBandwidthTotals()
	return s.TotalIn, s.TotalOut
}

// BandwidthByProtocol returns the bytes received and sent by the host per
// libp2p protocol (GossipSub, anti-entropy sync, identify, ...). The totals
// are updated about once a second.
func (n *Node) BandwidthByProtocol() map[protocol.ID]metrics.Stats {
	return n.bwc.GetBandwidthByProtocol()
}

// Traffic returns what GossipSub did with messages since the node started:
// how many were delivered, how many copies arrived as duplicates, and the
// IDONTWANT/IHAVE/IWANT control traffic.
func (n *Node) Traffic() Traffic { return n.traffic.traffic() }

// noDialHost is a host whose NewStream uses existing connections only.
// Streams opened on our own in reaction to a new connection (GossipSub
// greeting a new peer, an anti-entropy exchange) would otherwise dial the
// peer again if that connection has closed meanwhile, outside any backoff:
// a peer whose gater closes every connection right after the handshake
// (one whose allowlist does not name us) would then be redialled in a
// tight loop, each new connection starting the next stream.
type noDialHost struct{ host.Host }

// NewStream opens a stream to p over a connection that is already up.
func (h noDialHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	return h.Host.NewStream(network.WithNoDial(ctx, "rumor: only the redialer dials"), p, pids...)
}

// Close stops GossipSub and every goroutine the node started, waits for
// them, closes the host and then the Messages channel. It is idempotent and
// safe to call concurrently; every call returns the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		if n.mdns != nil {
			n.mdns.close() // before the host: its service reads the host's addresses
		}
		n.cancel()
		n.wg.Wait()
		if err := n.h.Close(); err != nil {
			n.closeErr = fmt.Errorf("gossip: close host: %w", err)
		}
		close(n.msgs)
		n.log.Info("gossip: closed", "id", n.self)
	})
	return n.closeErr
}
