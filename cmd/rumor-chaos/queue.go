package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/chaos"
	"github.com/rumor-dev/rumor/rpc"
)

// The queue workload: a submitter that queues a task every queueEvery on
// a random running agent (below what the workers take with the far
// region's settle window, about 2 a second), and a worker on every agent's host that takes
// tasks (one-shot takes, visibility queueVisibility), works on each for
// 100 to 800 ms and ends it done. At the end, with every fault healed,
// the workers drain the queue, and every acknowledged submission must
// have ended, done or failed, on every agent (chaos.Queue).
const (
	queueName       = "cq"
	queueEvery      = time.Second
	queueVisibility = 3 * time.Second
	queuePoll       = 200 * time.Millisecond
	queueDrain      = 120 * time.Second
	// queueTakeTimeout bounds one take: a claim's settle window, its key
	// exchange and the task's, each up to settle_max (2 s) with a far
	// peer. A take abandoned by its client gives its lease back.
	queueTakeTimeout = 10 * time.Second
)

// queueLog is the queue workload's history.
type queueLog struct {
	mu        sync.Mutex
	seq       int
	submitted []string // acknowledged submissions
	unknown   int      // submissions whose outcome is unknown
	takes     []chaos.Take
}

// queueSubmitter queues tasks until ctx is done.
func (w *workload) queueSubmitter(ctx context.Context, rng *rand.Rand) {
	for pause(ctx, queueEvery) {
		a := w.agents[rng.IntN(len(w.agents))]
		if !a.up() {
			continue
		}
		w.queue.mu.Lock()
		w.queue.seq++
		id := fmt.Sprintf("c%d", w.queue.seq)
		w.queue.mu.Unlock()
		w.gate.RLock()
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := a.client.TaskSubmit(cctx, queueName, rpc.TaskSubmit{ID: id, Payload: []byte(fmt.Sprintf("work for %s", id))})
		cancel()
		w.gate.RUnlock()
		w.queue.mu.Lock()
		switch {
		case err == nil:
			w.queue.submitted = append(w.queue.submitted, id)
		case rpc.CodeOf(err) == rpc.CodeInternal:
			w.queue.unknown++ // it may have been written
		}
		w.queue.mu.Unlock()
	}
}

// queueWorker takes and ends tasks on a until ctx is done; it reports
// whether it took one.
func (w *workload) queueWorker(ctx context.Context, a *agent, rng *rand.Rand) {
	for pause(ctx, queuePoll) {
		for ctx.Err() == nil && a.up() && w.queueTakeOnce(ctx, a, rng) {
		}
	}
}

// queueTakeOnce takes one task on a, works on it and ends it; it
// reports whether it took one.
func (w *workload) queueTakeOnce(ctx context.Context, a *agent, rng *rand.Rand) bool {
	w.gate.RLock()
	cctx, cancel := context.WithTimeout(ctx, queueTakeTimeout)
	res, err := a.client.TaskTake(cctx, queueName, rpc.TaskTake{VisibilityMillis: queueVisibility.Milliseconds()})
	cancel()
	w.gate.RUnlock()
	if err != nil || !res.Taken {
		return false
	}
	tk := chaos.Take{Task: res.Task.ID, Agent: a.i - 1, Attempt: res.Task.Attempt, Epoch: res.Task.Epoch, At: time.Now()}
	if pause(ctx, time.Duration(100+rng.IntN(700))*time.Millisecond) {
		w.gate.RLock()
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := a.client.TaskUpdate(cctx, tk.Task, rpc.TaskUpdate{State: "done", Result: fmt.Sprintf("by agent %d", a.i-1)})
		cancel()
		w.gate.RUnlock()
		tk.End, tk.Done = time.Now(), err == nil
	}
	w.queue.mu.Lock()
	w.queue.takes = append(w.queue.takes, tk)
	w.queue.mu.Unlock()
	return true
}

// drainQueue runs a worker on every agent until every acknowledged
// submission has ended on every agent, or queueDrain has passed; it
// returns the tasks that ended everywhere, with their states.
func (r *runner) drainQueue(ctx context.Context, w *workload, seed uint64) map[string]string {
	dctx, stop := context.WithTimeout(ctx, queueDrain)
	defer stop()
	var wg sync.WaitGroup
	for n, a := range r.agents {
		wg.Go(func() { w.queueWorker(dctx, a, rand.New(rand.NewPCG(seed, uint64(1000+n)))) })
	}
	defer wg.Wait()
	w.queue.mu.Lock()
	want := append([]string(nil), w.queue.submitted...)
	w.queue.mu.Unlock()
	for {
		ended := r.endedTasks(ctx)
		all := true
		for _, id := range want {
			if _, ok := ended[id]; !ok {
				all = false
				break
			}
		}
		if all || !pause(dctx, 500*time.Millisecond) {
			stop()
			wg.Wait()
			return r.endedTasks(ctx) // after the workers stopped
		}
	}
}

// endedTasks returns the queue's tasks that every agent holds ended, with
// the state agent 0 shows.
func (r *runner) endedTasks(ctx context.Context) map[string]string {
	out := map[string]string{}
	for n, a := range r.agents {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		ts, err := a.client.TaskList(cctx, rpc.TaskFilter{Queue: queueName})
		cancel()
		if err != nil {
			return map[string]string{}
		}
		seen := map[string]string{}
		for _, t := range ts {
			if t.State == "done" || t.State == "failed" {
				seen[t.ID] = t.State
			}
		}
		if n == 0 {
			out = seen
			continue
		}
		for id := range out {
			if _, ok := seen[id]; !ok {
				delete(out, id)
			}
		}
	}
	return out
}
