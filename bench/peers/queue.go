package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// queueParams are the work-queue figure's knobs.
type queueParams struct {
	tasks   int
	workers int
	// timeout is each BLMOVE's block timeout: how long a worker waits
	// for a task when the list is empty (rumor-bench: each take's wait).
	timeout time.Duration
	// within bounds the workers' time after the last submit was
	// acknowledged.
	within time.Duration
	// pipelined also measures a pipelined producer.
	pipelined bool
}

// Producer modes of the work-queue figure.
const (
	// modeOneCall: the producer sends one LPUSH and waits for its reply
	// before the next, as rumor-bench's submitter makes one TaskSubmit
	// call per task.
	modeOneCall = "one call per submit"
	// modePipelined: the producer writes its LPUSHes without waiting
	// (flushed every 8 KiB) and a reader takes their replies.
	modePipelined = "pipelined submits"
)

// QueueResult is the work-queue figure for Redis: the reliable-queue
// recipe on a list. A producer connection LPUSHes tasks onto jobs as fast
// as it can while each worker connection loops BLMOVE jobs processing
// RIGHT LEFT <timeout> (the take) then LREM processing 1 <payload> (the
// acknowledgement, as done).
type QueueResult struct {
	Peer           string  `json:"peer"`
	Mode           string  `json:"mode"`
	Workers        int     `json:"workers"`
	PayloadBytes   int     `json:"payload_bytes"`
	TimeoutSeconds float64 `json:"timeout_seconds"`
	benchstat.QueueFigures
	// Left is what the lists jobs and processing still held at the end
	// (must be 0).
	Left        int64   `json:"left"`
	CPUCores    float64 `json:"cpu_cores"`
	ServerCores float64 `json:"server_cores"`
	OtherCores  float64 `json:"other_cores"`
}

// problem returns what makes a completed run a failure: a task taken
// twice, lost, or left on a list.
func (r QueueResult) problem() error {
	errs := r.Problems()
	if r.Left > 0 {
		errs = append(errs, fmt.Errorf("%d entries were left on the lists", r.Left))
	}
	return errors.Join(errs...)
}

// queueSeq makes every run's list names unique.
var queueSeq atomic.Int64

// redisConn is one connection with its reader.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialConn(ctx context.Context, cfg redisConfig) (*redisConn, error) {
	c, err := dialRedis(ctx, cfg.addr, cfg.wait)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// do sends one command of byte-string arguments and reads its reply; an
// error reply is returned as the error.
func (rc *redisConn) do(args ...[]byte) (any, error) {
	if err := rc.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := rc.c.Write(appendCommand(nil, args...)); err != nil {
		return nil, err
	}
	v, err := readValue(rc.r)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(respError); ok {
		return nil, e
	}
	return v, nil
}

// integer sends a command whose reply is an integer.
func (rc *redisConn) integer(args ...[]byte) (int64, error) {
	v, err := rc.do(args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("redis: %s answered %v, not an integer", args[0], v)
	}
	return n, nil
}

func bs(s string) []byte { return []byte(s) }

// runRedisQueue measures the reliable-queue recipe on a Redis list with
// qp.workers worker connections and one producer connection in mode.
func runRedisQueue(ctx context.Context, cfg redisConfig, qp queueParams, payload int, mode string) (QueueResult, error) {
	res := QueueResult{Peer: "redis", Mode: mode, Workers: qp.workers, PayloadBytes: payload, TimeoutSeconds: qp.timeout.Seconds()}
	if qp.tasks < 1 || qp.workers < 1 {
		return res, fmt.Errorf("the work queue needs at least 1 task and 1 worker, got %d and %d", qp.tasks, qp.workers)
	}
	base := fmt.Sprintf("rumor-bench-peers/%d/queue%d", os.Getpid(), queueSeq.Add(1))
	jobs, processing := bs(base+"/jobs"), bs(base+"/processing")
	timeout := bs(strconv.FormatFloat(qp.timeout.Seconds(), 'f', -1, 64))

	var conns []*redisConn
	defer func() {
		for _, rc := range conns {
			_ = rc.c.Close()
		}
	}()
	for range qp.workers + 1 {
		rc, err := dialConn(ctx, cfg)
		if err != nil {
			return res, err
		}
		conns = append(conns, rc)
	}
	producer, workers := conns[0], conns[1:]
	if _, err := producer.integer(bs("DEL"), jobs, processing); err != nil {
		return res, err
	}

	log := benchstat.NewQueueLog()
	var (
		stopping atomic.Bool
		stopOnce sync.Once
		wg       sync.WaitGroup
		errMu    sync.Mutex
		workErr  error
	)
	// stop ends the workers: their connections close, which ends a
	// BLMOVE waiting for a task.
	stop := func() {
		stopOnce.Do(func() {
			stopping.Store(true)
			for _, rc := range workers {
				_ = rc.c.Close()
			}
		})
	}
	failed := func(err error) {
		if stopping.Load() {
			return
		}
		errMu.Lock()
		workErr = errors.Join(workErr, err)
		errMu.Unlock()
		stop()
	}
	defer stop()
	unwatch := context.AfterFunc(ctx, stop)
	defer unwatch()

	meter := startCPUMeter(cfg.pid)
	for w, rc := range workers {
		wg.Go(func() {
			for !stopping.Load() {
				began := time.Now()
				v, err := rc.do(bs("BLMOVE"), jobs, processing, bs("RIGHT"), bs("LEFT"), timeout)
				took := time.Since(began)
				if err != nil {
					failed(fmt.Errorf("worker %d: BLMOVE: %w", w, err))
					return
				}
				if v == nil {
					log.Empty() // timed out on an empty list
					continue
				}
				task, ok := v.([]byte)
				id, idOK := benchstat.QueuePayloadID(task)
				if !ok || !idOK {
					failed(fmt.Errorf("worker %d: BLMOVE returned %v, not a task", w, v))
					return
				}
				log.Taken(id, took)
				began = time.Now()
				n, err := rc.integer(bs("LREM"), processing, bs("1"), task)
				if err != nil || n != 1 {
					failed(fmt.Errorf("worker %d: LREM %s removed %d: %v", w, id, n, err))
					return
				}
				if now := time.Now(); log.Done(id, now, now.Sub(began)) >= qp.tasks {
					stop()
					return
				}
			}
		})
	}

	began := time.Now()
	var err error
	if mode == modePipelined {
		err = submitPipelined(producer, jobs, qp.tasks, payload, log)
	} else {
		for i := range qp.tasks {
			if err = ctx.Err(); err != nil {
				break
			}
			id := fmt.Sprintf("q%06d", i)
			log.Submitted(id, time.Now())
			if _, err = producer.integer(bs("LPUSH"), jobs, benchstat.QueuePayload(id, payload)); err != nil {
				err = fmt.Errorf("LPUSH %s: %w", id, err)
				break
			}
		}
	}
	log.SubmitSpan(began, time.Now())
	if err != nil {
		failed(fmt.Errorf("producer: %w", err))
	}
	deadline := time.AfterFunc(qp.within, stop)
	wg.Wait()
	deadline.Stop()
	res.CPUCores, res.ServerCores, res.OtherCores = meter.cores()
	res.QueueFigures = log.Figures()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if workErr != nil {
		return res, workErr
	}
	for _, key := range [][]byte{jobs, processing} {
		n, err := producer.integer(bs("LLEN"), key)
		if err != nil {
			return res, err
		}
		res.Left += n
	}
	if _, err := producer.integer(bs("DEL"), jobs, processing); err != nil {
		return res, err
	}
	if res.Lost > 0 {
		return res, fmt.Errorf("%d of %d tasks were not done within %v of the last submit", res.Lost, res.Tasks, qp.within)
	}
	return res, nil
}

// submitPipelined LPUSHes tasks onto jobs without waiting for each reply:
// the commands go out in 8 KiB writes while a reader takes the replies; it
// returns once every reply is in.
func submitPipelined(rc *redisConn, jobs []byte, tasks, payload int, log *benchstat.QueueLog) error {
	if err := rc.c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	defer rc.c.SetDeadline(time.Time{})
	replies := make(chan error, 1)
	go func() {
		for i := range tasks {
			v, err := readValue(rc.r)
			if err == nil {
				if e, ok := v.(respError); ok {
					err = e
				}
			}
			if err != nil {
				replies <- fmt.Errorf("LPUSH reply %d: %w", i, err)
				return
			}
		}
		replies <- nil
	}()
	w := bufio.NewWriterSize(rc.c, 16<<10)
	var buf []byte
	var err error
	for i := range tasks {
		id := fmt.Sprintf("q%06d", i)
		log.Submitted(id, time.Now())
		buf = appendCommand(buf[:0], bs("LPUSH"), jobs, benchstat.QueuePayload(id, payload))
		if _, err = w.Write(buf); err != nil {
			break
		}
		if w.Buffered() >= 8<<10 {
			if err = w.Flush(); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = rc.c.Close() // ends the reader
		<-replies
		return err
	}
	return <-replies
}

// printQueue prints the work-queue figure.
func printQueue(out io.Writer, rep Report) {
	if rep.Redis == nil || len(rep.Redis.Queue) == 0 {
		return
	}
	r0 := rep.Redis.Queue[0]
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "3. Work queue: Redis list, the reliable-queue recipe: a producer connection LPUSHes %d tasks of %d B onto jobs as fast as it can while %d worker connections\n",
		r0.Tasks, r0.PayloadBytes, r0.Workers)
	fmt.Fprintf(tw, "   loop BLMOVE jobs processing RIGHT LEFT %g (the take) then LREM processing 1 <task> (the ack, as done); drain is from the first submit to the last ack;\n", r0.TimeoutSeconds)
	fmt.Fprintln(tw, "   take is each BLMOVE that returned a task, ack each LREM; end-to-end is from just before the LPUSH to the LREM's reply")
	fmt.Fprintln(tw, "producer\ttasks\tsubmit/s\tdrain/s\tdrain s\ttake p50/p99/max ms\tack p50/p99 ms\tend-to-end p50/p99/max ms\tempty takes\ttaken twice\tlost\tleft on lists\tCPU bench/server/others\t")
	for _, r := range rep.Redis.Queue {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.3f\t%s / %s / %s\t%s / %s\t%s / %s / %s\t%d\t%d\t%d\t%d\t%.2f / %.2f / %.2f of %d\t\n",
			r.Mode, r.Tasks, r.SubmitPerSec, r.DrainPerSec, r.DrainSeconds,
			benchstat.FmtMs(r.Take.P50Ms), benchstat.FmtMs(r.Take.P99Ms), benchstat.FmtMs(r.Take.MaxMs),
			benchstat.FmtMs(r.Ack.P50Ms), benchstat.FmtMs(r.Ack.P99Ms),
			benchstat.FmtMs(r.EndToEnd.P50Ms), benchstat.FmtMs(r.EndToEnd.P99Ms), benchstat.FmtMs(r.EndToEnd.MaxMs),
			r.EmptyTakes, r.TakenTwice, r.Lost, r.Left, r.CPUCores, r.ServerCores, r.OtherCores, rep.Machine.NumCPU)
	}
	tw.Flush()
}
