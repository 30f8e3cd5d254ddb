package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestThroughputSmallCountsWireAndDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	p := params{
		payload: 200, drain: 30 * time.Second, tpAgents: 3, tpDuration: 500 * time.Millisecond,
		writers: 1, window: 256, sampleEvery: 10,
		cluster: clusterOptions{heartbeat: time.Second, formTimeout: 60 * time.Second, seed: 1},
	}
	r, err := runThroughput(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Written == 0 || r.Lost != 0 || r.SlowestApplied != r.Written {
		t.Fatalf("written %d, slowest applied %d, lost %d", r.Written, r.SlowestApplied, r.Lost)
	}
	w := r.Wire
	// Every receiver applied every update, so GossipSub delivered at least
	// one message to each, and each update's payload crossed the wire.
	if w.Messages < uint64(r.Receivers) {
		t.Errorf("%d GossipSub messages delivered to %d receivers", w.Messages, r.Receivers)
	}
	if w.PerUpdate < float64(p.payload) {
		t.Errorf("%.0f B received per update, less than the %d B payload", w.PerUpdate, p.payload)
	}
	var mesh float64
	for proto, b := range w.ByProtocol {
		if strings.Contains(proto, "meshsub/") { // the bulk router's and the lane's
			mesh += b
		}
	}
	if mesh < float64(p.payload) || mesh > w.PerUpdate+1 {
		t.Errorf("GossipSub bytes per update %.0f, want between the payload and the total %.0f (by protocol %v)", mesh, w.PerUpdate, w.ByProtocol)
	}
}
