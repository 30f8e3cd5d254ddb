//go:build race

package agent

// raceEnabled reports that the race detector is on: it slows libp2p, and
// gossip delay spikes reach ~400 ms with 8 agents on 2 cores.
const raceEnabled = true
