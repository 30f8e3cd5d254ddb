package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestLaneSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	p := params{
		payload: 200,
		cluster: clusterOptions{heartbeat: time.Second, formTimeout: 60 * time.Second, seed: 1},
		lane: laneParams{agents: 3, adds: 5, gap: 2 * time.Millisecond, window: 256, keys: 64,
			within: 30 * time.Second, ramp: 50 * time.Millisecond, target: 2},
	}
	r, err := runLane(context.Background(), p.lane, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Idle.Latency.N != 5 || r.Flood.Latency.N != 5 || r.Idle.Lost != 0 || r.Flood.Lost != 0 {
		t.Fatalf("idle %+v, flood %+v: want 5 adds each, none lost", r.Idle, r.Flood)
	}
	if r.SvcWritten == 0 || r.SvcPublished == 0 || r.SvcPerSec <= 0 || r.Ratio <= 0 {
		t.Errorf("flood: %d written, %d published, %.0f/s, ratio %.2f", r.SvcWritten, r.SvcPublished, r.SvcPerSec, r.Ratio)
	}
	var out bytes.Buffer
	printLane(&out, Report{Lane: &r}, params{phases: map[int]bool{10: true}, payload: 200, lane: p.lane})
	if !strings.Contains(out.String(), "10. Priority lane") || !strings.Contains(out.String(), "target <= 2x") {
		t.Errorf("printed:\n%s", out.String())
	}
}
