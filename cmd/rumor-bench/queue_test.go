package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

func TestQueueSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	p := params{
		payload: 200,
		cluster: clusterOptions{heartbeat: time.Second, formTimeout: 60 * time.Second, seed: 1},
		queue: queueParams{agents: 3, tasks: 20, wait: 250 * time.Millisecond, visibility: time.Minute,
			within: time.Minute, agree: 10 * time.Second},
	}
	r, err := runQueue(context.Background(), p.queue, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.problem(); err != nil {
		t.Fatal(err)
	}
	if r.Tasks != 20 || r.Done != 20 || r.Takes != 20 || r.Take.N != 20 || r.EndToEnd.N != 20 || r.SubmitPerSec <= 0 || r.DrainPerSec <= 0 {
		t.Fatalf("figures %+v", r.QueueFigures)
	}
	sum := 0
	for _, n := range r.TakesByWorker {
		sum += n
	}
	if len(r.TakesByWorker) != 3 || sum != 20 {
		t.Errorf("takes by worker %v: want 3 workers, 20 takes in all", r.TakesByWorker)
	}
	if r.SettleStartMs < 50 || r.SettleEndMs < 50 {
		t.Errorf("settle window %v ms before, %v ms after: below settle_min", r.SettleStartMs, r.SettleEndMs)
	}
	var out bytes.Buffer
	printQueue(&out, Report{Queue: &r}, params{phases: map[int]bool{11: true}})
	if !strings.Contains(out.String(), "11. Work queue: N=3") || !strings.Contains(out.String(), "taken twice") {
		t.Errorf("printed:\n%s", out.String())
	}
}

// TestQueueProblem: a task taken twice, lost or not done on some agent
// fails the figure.
func TestQueueProblem(t *testing.T) {
	ok := QueueResult{QueueFigures: benchstat.QueueFigures{Tasks: 10, Done: 10}}
	if err := ok.problem(); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	bad := ok
	bad.TakenTwice, bad.Lost, bad.NotDone = 1, 2, 3
	err := bad.problem()
	if err == nil {
		t.Fatal("no problem")
	}
	for _, want := range []string{"1 tasks were taken twice", "2 of 10 tasks were never done", "did not list 3 tasks"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	var out bytes.Buffer
	printQueue(&out, Report{}, params{phases: map[int]bool{11: true}})
	if !strings.Contains(out.String(), "11. Work queue: (not measured)") {
		t.Errorf("printed %q", out.String())
	}
}
