package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/lease"
	"github.com/rumor-dev/rumor/rpc"
)

// queueParams are figure 11's knobs.
type queueParams struct {
	agents int // one worker on each
	tasks  int // submitted by agent 0
	// wait is each take's WaitMillis: how long a worker's take waits for
	// a task when it finds none, so that the workers do not spin.
	wait time.Duration
	// visibility is each take's visibility timeout: long enough that no
	// task is queued again during the run.
	visibility time.Duration
	// within bounds the workers' time after the last submit returned.
	within time.Duration
	// agree bounds the wait, after the drain, until every agent lists
	// every task done.
	agree time.Duration
}

// queueName is figure 11's work queue.
const queueName = "bench"

// QueueResult is figure 11: the work queue. One submitter on agent 0 queues
// tasks as fast as it can (TaskSubmit, one call per task) while one worker
// on each agent loops TaskTake, then TaskUpdate done.
type QueueResult struct {
	Agents       int     `json:"agents"`
	Workers      int     `json:"workers"`
	PayloadBytes int     `json:"payload_bytes"`
	WaitMs       float64 `json:"wait_ms"`
	MinPeers     int     `json:"min_peers"`
	// SettleStartMs and SettleEndMs are agent 0's claim settle window
	// before and after the run (the default config derives it from the
	// measured gossip p99: 3 x p99 within settle_min..settle_max).
	SettleStartMs float64 `json:"settle_start_ms"`
	SettleEndMs   float64 `json:"settle_end_ms"`
	benchstat.QueueFigures
	// TakesByWorker is how many tasks each worker took, and
	// TakeMaxByWorkerMs its longest take that returned one.
	// TakeCutByWorkerMs is how long the take each worker was in when the
	// run ended had lasted (0: none): a take that returns no task is not
	// in Take.
	TakesByWorker     []int     `json:"takes_by_worker"`
	TakeMaxByWorkerMs []float64 `json:"take_max_by_worker_ms"`
	TakeCutByWorkerMs []float64 `json:"take_cut_by_worker_ms"`
	// NotDone is, after the drain, the most tasks any agent did not yet
	// list as done within the agreement wait (must be 0).
	NotDone    int     `json:"not_done"`
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
}

// runQueueFigure runs figure 11 if selected.
func runQueueFigure(ctx context.Context, out io.Writer, p params, rep *Report, fail func(string, error)) {
	if !p.phases[11] || ctx.Err() != nil {
		return
	}
	qp := p.queue
	fmt.Fprintf(out, "[11] work queue: %d agents, %d tasks submitted on agent 0, one worker per agent...\n", qp.agents, qp.tasks)
	r, err := runQueue(ctx, qp, p)
	if err == nil {
		err = r.problem()
	}
	if err != nil {
		fail("work queue", err)
	}
	if r.Done > 0 || err == nil {
		rep.Queue = &r
	}
}

// problem returns what makes a completed run a failure: a task taken
// twice, lost, or not done on some agent.
func (r QueueResult) problem() error {
	errs := r.Problems()
	if r.NotDone > 0 {
		errs = append(errs, fmt.Errorf("an agent did not list %d tasks as done", r.NotDone))
	}
	return errors.Join(errs...)
}

// settleWindow returns the claim settle window a's kernels use now, with
// config cfg.
func settleWindow(a *agent.Agent, cfg config.Config) time.Duration {
	p99, _ := a.Replica().GossipDelayP99()
	return lease.SettleWindow(cfg.Settle, p99, cfg.SettleMin, cfg.SettleMax)
}

// runQueue starts qp.agents agents with the default config and one worker
// on each, then submits qp.tasks tasks on agent 0 as fast as it can.
func runQueue(ctx context.Context, qp queueParams, p params) (QueueResult, error) {
	res := QueueResult{Agents: qp.agents, Workers: qp.agents, PayloadBytes: p.payload, WaitMs: benchstat.Ms(qp.wait)}
	if qp.agents < 1 || qp.tasks < 1 {
		return res, fmt.Errorf("the work queue figure needs at least 1 agent and 1 task, got %d and %d", qp.agents, qp.tasks)
	}
	opt := p.cluster
	opt.settle = min(opt.settle, 500*time.Millisecond)
	c, err := startCluster(ctx, qp.agents, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	res.MinPeers = c.minPeers
	res.SettleStartMs = benchstat.Ms(settleWindow(c.agents[0], c.cfgs[0]))

	log := benchstat.NewQueueLog()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		workErr error
	)
	failed := func(err error) {
		errMu.Lock()
		workErr = errors.Join(workErr, err)
		errMu.Unlock()
		stop()
	}
	take := rpc.TaskTake{VisibilityMillis: qp.visibility.Milliseconds(), WaitMillis: qp.wait.Milliseconds()}
	res.TakesByWorker = make([]int, len(c.agents))
	res.TakeMaxByWorkerMs, res.TakeCutByWorkerMs = make([]float64, len(c.agents)), make([]float64, len(c.agents))
	meter := startCPUMeter()
	for w, a := range c.agents {
		wg.Go(func() {
			for {
				began := time.Now()
				r, err := a.TaskTake(wctx, queueName, take)
				took := time.Since(began)
				switch {
				case wctx.Err() != nil:
					res.TakeCutByWorkerMs[w] = benchstat.Ms(took) // read after wg.Wait
					return
				case err != nil:
					failed(fmt.Errorf("worker %d: take: %w", w, err))
					return
				case !r.Taken || r.Task == nil:
					log.Empty()
					continue
				}
				id := r.Task.ID
				log.Taken(id, took)
				res.TakesByWorker[w]++ // read after wg.Wait
				res.TakeMaxByWorkerMs[w] = max(res.TakeMaxByWorkerMs[w], benchstat.Ms(took))
				if !bytes.Equal(r.Task.Payload, benchstat.QueuePayload(id, p.payload)) {
					failed(fmt.Errorf("worker %d: task %s came with a payload of %d bytes, not the one submitted", w, id, len(r.Task.Payload)))
					return
				}
				began = time.Now()
				if _, err := a.TaskUpdate(wctx, id, rpc.TaskUpdate{State: "done"}); err != nil {
					if wctx.Err() == nil {
						failed(fmt.Errorf("worker %d: done %s: %w", w, id, err))
					}
					return
				}
				if now := time.Now(); log.Done(id, now, now.Sub(began)) >= qp.tasks {
					stop() // all done: end the other workers' waits
					return
				}
			}
		})
	}

	// The submitter: one call per task, as fast as it can.
	submitter := c.agents[0]
	began := time.Now()
	for i := range qp.tasks {
		id := fmt.Sprintf("q%06d", i)
		req := rpc.TaskSubmit{ID: id, Payload: benchstat.QueuePayload(id, p.payload)}
		log.Submitted(id, time.Now())
		if _, err := submitter.TaskSubmit(wctx, queueName, req); err != nil {
			failed(fmt.Errorf("submit %s: %w", id, err))
			break
		}
	}
	log.SubmitSpan(began, time.Now())
	deadline := time.AfterFunc(qp.within, stop)
	wg.Wait()
	deadline.Stop()
	res.CPUCores, res.OtherCores = meter.cores()
	res.QueueFigures = log.Figures()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if workErr != nil {
		return res, workErr
	}
	if res.Lost > 0 {
		return res, fmt.Errorf("%d of %d tasks were not done within %v of the last submit", res.Lost, res.Tasks, qp.within)
	}

	// Every agent lists every task done.
	agreeBy := time.Now().Add(qp.agree)
	for {
		res.NotDone = 0
		for _, a := range c.agents {
			done, err := a.TaskList(ctx, rpc.TaskFilter{Queue: queueName, State: "done"})
			if err != nil {
				return res, fmt.Errorf("task list: %w", err)
			}
			res.NotDone = max(res.NotDone, res.Tasks-len(done))
		}
		if res.NotDone == 0 || time.Now().After(agreeBy) {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.SettleEndMs = benchstat.Ms(settleWindow(c.agents[0], c.cfgs[0]))
	return res, nil
}

// printQueue prints figure 11.
func printQueue(tw io.Writer, rep Report, p params) {
	r := rep.Queue
	if r == nil {
		if p.phases[11] {
			fmt.Fprintln(tw, "\n11. Work queue: (not measured)")
		}
		return
	}
	fmt.Fprintf(tw, "\n11. Work queue: N=%d in this process, default config (claim settle window %s ms before the run, %s ms after); %d tasks of %d B\n",
		r.Agents, benchstat.FmtMs(r.SettleStartMs), benchstat.FmtMs(r.SettleEndMs), r.Tasks, r.PayloadBytes)
	fmt.Fprintf(tw, "   submitted on agent 0 (TaskSubmit, one call per task, as fast as it can) while %d workers, one per agent, loop TaskTake (wait %s ms) then TaskUpdate done;\n",
		r.Workers, benchstat.FmtMs(r.WaitMs))
	fmt.Fprintln(tw, "   calls in process (no socket); drain is from the first submit to the last done; take is each TaskTake that returned a task, done each TaskUpdate; end-to-end is submit to done")
	fmt.Fprintln(tw, "tasks\tsubmit/s\tdrain/s\tdrain s\ttake p50/p99/max ms\tdone p50/p99 ms\tend-to-end p50/p99/max ms\tempty takes\ttaken twice\tlost\tnot done somewhere\tCPU bench/others\t")
	fmt.Fprintf(tw, "%d\t%.0f\t%.1f\t%.2f\t%s / %s / %s\t%s / %s\t%s / %s / %s\t%d\t%d\t%d\t%d\t%.2f / %.2f of %d\t\n",
		r.Tasks, r.SubmitPerSec, r.DrainPerSec, r.DrainSeconds,
		benchstat.FmtMs(r.Take.P50Ms), benchstat.FmtMs(r.Take.P99Ms), benchstat.FmtMs(r.Take.MaxMs),
		benchstat.FmtMs(r.Ack.P50Ms), benchstat.FmtMs(r.Ack.P99Ms),
		benchstat.FmtMs(r.EndToEnd.P50Ms), benchstat.FmtMs(r.EndToEnd.P99Ms), benchstat.FmtMs(r.EndToEnd.MaxMs),
		r.EmptyTakes, r.TakenTwice, r.Lost, r.NotDone, r.CPUCores, r.OtherCores, rep.Machine.NumCPU)
	if len(r.TakesByWorker) > 0 {
		fmt.Fprint(tw, "   tasks taken by each worker (its longest take; the take the end of the run cut, ms):")
		for w, n := range r.TakesByWorker {
			fmt.Fprintf(tw, " %d (%s; %s)", n, benchstat.FmtMs(r.TakeMaxByWorkerMs[w]), benchstat.FmtMs(r.TakeCutByWorkerMs[w]))
		}
		fmt.Fprintln(tw)
	}
}
