package agent

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/rumor-dev/rumor/config"
)

// openClusterWarning is logged at start when allow_peers is empty.
const openClusterWarning = "open cluster: any peer that can reach this agent may join; set allow_peers"

// joinPolicy turns the join-control settings into what the gossip layer
// takes, and warns about settings that leave the cluster open or cannot
// work.
func (a *Agent) joinPolicy() ([]peer.ID, error) {
	allow, err := config.PeerIDs(a.cfg.AllowPeers)
	if err != nil {
		return nil, err
	}
	if len(allow) == 0 {
		a.log.Warn(openClusterWarning)
		return nil, nil
	}
	listed := make(map[peer.ID]bool, len(allow))
	for _, p := range allow {
		listed[p] = true
	}
	for _, s := range a.cfg.Bootstrap {
		if ai, err := peer.AddrInfoFromString(s); err == nil && !listed[ai.ID] {
			a.log.Warn("bootstrap peer is not in allow_peers: every connection with it will be refused", "peer", ai.ID)
		}
	}
	return allow, nil
}
