package membership

import (
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DialInfo returns what to dial for the node that announced addrs in
// its member entry node/<id>: the addresses that end in /p2p/<id>, its own id,
// and hold no other /p2p/ component, without that suffix. The others are
// dropped: an address without the node's id, or naming another node, would
// make every agent that reads the entry dial somebody else (and anyone
// who can publish can announce one). An entry is signed by its node (the
// write policy lets node/<id> be written by id only), so no one can make
// the cluster dial an address in another node's name. ok is false if id is
// not a node id or no address is left.
func DialInfo(id string, addrs []string) (ai peer.AddrInfo, ok bool) {
	pid, err := peer.Decode(id)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ai.ID = pid
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		p2p, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil || p2p.ID != pid || len(p2p.Addrs) != 1 {
			continue
		}
		if _, err := p2p.Addrs[0].ValueForProtocol(ma.P_P2P); err == nil {
			continue // through another node (a relay)
		}
		ai.Addrs = append(ai.Addrs, p2p.Addrs[0])
	}
	return ai, len(ai.Addrs) > 0
}
