package agent

import (
	"bytes"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
)

// openClusterWarning is logged at start when allow_peers is empty.
const openClusterWarning = "open cluster: any peer that can reach this agent may join; set allow_peers"

// loadPSK reads a libp2p private-network key file in the v1 format that
// `rumor keygen --psk` writes (/key/swarm/psk/1.0.0/, an encoding line,
// then the 32-byte key).
func loadPSK(path string) (pnet.PSK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: psk_file: %w", err)
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("config: psk_file: %s is not a private-network key (create one with `rumor keygen --psk --out FILE`): %w", path, err)
	}
	return psk, nil
}

// peerIDs parses node ids that Config.Validate has checked.
func peerIDs(ids []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("config: node id %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// joinPolicy turns the join-control settings into what the gossip layer
// takes, and warns about settings that leave the cluster open or cannot
// work.
func (a *Agent) joinPolicy() ([]peer.ID, error) {
	allow, err := peerIDs(a.cfg.AllowPeers)
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

// heartbeatAddrs returns the addresses to dial node id at, from its own
// heartbeat: only those whose /p2p/ component names id itself. A heartbeat
// is signed by its node (the write policy lets node/<id> be written by id
// only), so no one can make the cluster dial an address in another node's
// name; addresses without /p2p/, or naming another node, are ignored.
func heartbeatAddrs(id string, addrs []string) (peer.AddrInfo, bool) {
	pid, err := peer.Decode(id)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ai := peer.AddrInfo{ID: pid}
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if p2p, err := peer.AddrInfoFromP2pAddr(m); err == nil && p2p.ID == pid {
			ai.Addrs = append(ai.Addrs, p2p.Addrs...)
		}
	}
	return ai, len(ai.Addrs) > 0
}
