package gossip

import (
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Traffic counts what GossipSub did with messages, since the node started.
// Duplicates ÷ Delivered is how many extra copies of each message arrived
// from the mesh: the wire cost beyond one copy.
type Traffic struct {
	Delivered  uint64 // first copies of valid messages
	Duplicates uint64 // further copies of messages already seen, dropped unvalidated
	Rejected   uint64 // messages rejected or ignored (by our validator or GossipSub)
	// IDontWantSent counts the message ids this node asked its mesh peers
	// not to send (GossipSub v1.2 IDONTWANT), over all peers.
	IDontWantSent uint64
	// IHave and IWant count the message ids gossiped to and requested by
	// this node in control messages it received.
	IHaveIn, IWantIn uint64
}

// trafficTracer is a pubsub.RawTracer that only counts. GossipSub calls it
// synchronously from its event loop, so it does nothing but atomic adds.
type trafficTracer struct {
	delivered, duplicates, rejected atomic.Uint64
	idontwantOut, ihaveIn, iwantIn  atomic.Uint64
}

func (t *trafficTracer) traffic() Traffic {
	return Traffic{
		Delivered: t.delivered.Load(), Duplicates: t.duplicates.Load(), Rejected: t.rejected.Load(),
		IDontWantSent: t.idontwantOut.Load(), IHaveIn: t.ihaveIn.Load(), IWantIn: t.iwantIn.Load(),
	}
}

func (t *trafficTracer) DeliverMessage(*pubsub.Message)           { t.delivered.Add(1) }
func (t *trafficTracer) DuplicateMessage(*pubsub.Message)         { t.duplicates.Add(1) }
func (t *trafficTracer) RejectMessage(*pubsub.Message, string)    { t.rejected.Add(1) }
func (t *trafficTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *trafficTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *trafficTracer) Join(string)                              {}
func (t *trafficTracer) Leave(string)                             {}
func (t *trafficTracer) Graft(peer.ID, string)                    {}
func (t *trafficTracer) Prune(peer.ID, string)                    {}
func (t *trafficTracer) ValidateMessage(*pubsub.Message)          {}
func (t *trafficTracer) ThrottlePeer(peer.ID)                     {}
func (t *trafficTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (t *trafficTracer) UndeliverableMessage(*pubsub.Message)     {}

func (t *trafficTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

func (t *trafficTracer) RecvRPC(rpc *pubsub.RPC) {
	ctl := rpc.GetControl()
	if ctl == nil {
		return
	}
	var ihave, iwant int
	for _, c := range ctl.GetIhave() {
		ihave += len(c.GetMessageIDs())
	}
	for _, c := range ctl.GetIwant() {
		iwant += len(c.GetMessageIDs())
	}
	t.ihaveIn.Add(uint64(ihave))
	t.iwantIn.Add(uint64(iwant))
}

func (t *trafficTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	ctl := rpc.GetControl()
	if ctl == nil {
		return
	}
	var n int
	for _, c := range ctl.GetIdontwant() {
		n += len(c.GetMessageIDs())
	}
	t.idontwantOut.Add(uint64(n))
}
