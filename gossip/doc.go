// Package gossip moves opaque byte payloads between rumor nodes.
//
// A [Node] owns a libp2p host (TCP and QUIC, Noise, no relay, no NAT port
// mapping) and GossipSub, with one topic per namespace, named
// "/rumor/<cluster>/<topic>/1". Every message passes a per-topic validator
// before it is delivered or forwarded: the validator enforces the size
// limit, calls the caller's [Config.Validate] and counts every rejection
// by reason.
//
// The topics of the priority lane ([Config.Lane]) run on a GossipSub
// router of their own, on [LaneProtocol]: its own event loop, outgoing
// queue per peer, validation queue and workers. GossipSub's queues are
// first come, first served, and drop what overflows them, so a flood on a
// bulk topic sharing them would delay the lane's messages behind it, or
// drop them. The bulk router validates inline, on its workers (one per
// CPU), so that a flood waits in its validation queue rather than as
// goroutines that the lane's would queue behind for the CPU.
//
// Join control: with [Config.AllowPeers] a connection gater admits only the
// listed peers, on TCP and QUIC, and counts refusals ([Node.Refused]); with
// [Config.PSK] the host is a libp2p private network, which covers TCP only,
// so QUIC is then off.
//
// GossipSub does not redial lost peers, so a Node keeps every known peer
// (the bootstrap list plus [Node.AddPeer]) connected itself, through a
// [redial.Redialer] (package gossip/redial): when a connection drops it
// redials at once and then with jittered exponential backoff until the
// peer is back. That redialer is the only thing that dials: streams opened
// through the host (GossipSub's, and those of [Node.Host]'s users) use the
// connections that are up.
//
// Finding peers: bootstrap addresses ([redial.CheckJoin]) may name their
// host by DNS, which the redialer resolves, with [Config.Resolver], at
// every dial. With [Config.MDNS] the node also finds peers of its cluster
// on the local network by multicast DNS. [Node.Found] says how each peer
// was first found.
//
// The package knows nothing about what the bytes mean: it imports no other
// rumor package but its own sub-package gossip/redial, which imports none.
package gossip
