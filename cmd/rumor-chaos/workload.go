package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rumor-dev/rumor/chaos"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// Workload shape: a few shared keys, so that agents conflict often.
const (
	blIDs     = 16 // bl/chaos/u0..u15, added and removed by everyone
	tasks     = 8  // task/t0..t7, assigned to anyone and cancelled by anyone
	instances = 3  // svc/chaos/n<I>-0..2, each agent's own
	kvKeys    = 8  // kv/chaos/k0..k7, put and deleted by everyone
	kernels   = 3  // kernel/k0..k2, claimed by everyone
	opTimeout = 3 * time.Second
	leaseTTL  = 3 * time.Second
)

// workload runs clients against every agent and records the history.
type workload struct {
	agents   []*agent
	ids      []string
	period   time.Duration // sampling period of kernel views
	rumorBin string        // the rumor binary, for rumor lock

	// gate lets quiesce wait for every operation in flight and hold back
	// new ones: workers hold it shared around each call.
	gate sync.RWMutex

	mu      sync.Mutex
	ops     []chaos.Op
	samples []chaos.Sample
	unread  int // acked ops whose write could not be read back (agent gone)
	// superseded counts acked kernel renewals and releases whose record a
	// claim of a later epoch had already replaced when read back.
	superseded int
	missing    []string // acked ops whose write the agent did not hold right after
	locks      []lockRun

	queue queueLog
	// watches are the watch workload's streams, one per agent, and
	// reconnects how many of its streams read a line before they ended.
	watches    []chaos.WatchStream
	reconnects int
}

func (w *workload) record(op chaos.Op) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op.ID = len(w.ops) + 1
	w.ops = append(w.ops, op)
}

// quiesce waits for the operations in flight and holds back new ones until
// the returned function is called.
func (w *workload) quiesce() (resume func()) {
	w.gate.Lock()
	return w.gate.Unlock
}

// run starts five clients per agent (data, kernels, rumor lock, a queue
// worker and a watcher), the queue's submitter and the sampler; it returns when ctx is done and all of them have stopped.
func (w *workload) run(ctx context.Context, seed uint64) {
	var wg sync.WaitGroup
	for n, a := range w.agents {
		wg.Add(3)
		go func() { defer wg.Done(); w.dataClient(ctx, a, rand.New(rand.NewPCG(seed, uint64(3*n)))) }()
		go func() { defer wg.Done(); w.kernelClient(ctx, a, rand.New(rand.NewPCG(seed, uint64(3*n+1)))) }()
		go func() { defer wg.Done(); w.lockClient(ctx, a, rand.New(rand.NewPCG(seed, uint64(3*n+2)))) }()
	}
	for n, a := range w.agents {
		wg.Go(func() { w.queueWorker(ctx, a, rand.New(rand.NewPCG(seed, uint64(500+n)))) })
	}
	wg.Go(func() { w.queueSubmitter(ctx, rand.New(rand.NewPCG(seed, 499))) })
	w.watches = make([]chaos.WatchStream, len(w.agents))
	for n, a := range w.agents {
		wg.Go(func() { w.watchClient(ctx, a, &w.watches[n], rand.New(rand.NewPCG(seed, uint64(600+n)))) })
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.sampler(ctx) }()
	wg.Wait()
}

// pause waits d or until ctx is done; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// call runs one operation on agent a under the gate, classifies its
// outcome and, if it was acknowledged, reads back the write it made.
//
// epoch, if not nil, is the lease epoch a kernel operation acts on, read
// once fn has run (a claim's fn sets it to the epoch of its claim).
func (w *workload) call(ctx context.Context, a *agent, kind, key string, epoch *uint64, fn func(context.Context) (granted bool, err error)) chaos.Op {
	w.gate.RLock()
	defer w.gate.RUnlock()
	op := chaos.Op{Agent: a.i - 1, Kind: kind, Key: key, Start: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	granted, err := fn(cctx)
	cancel()
	op.End, op.Granted = time.Now(), granted
	if epoch != nil {
		op.Epoch = *epoch
	}
	switch {
	case err == nil:
		op.Outcome = chaos.OK
	case rpc.CodeOf(err) == rpc.CodeBadRequest || rpc.CodeOf(err) == rpc.CodeNotFound || rpc.CodeOf(err) == rpc.CodeDenied:
		op.Outcome, op.Err = chaos.Failed, err.Error()
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
		op.Outcome, op.Err = chaos.Failed, err.Error() // nobody took the request
	default:
		op.Outcome, op.Err = chaos.Unknown, err.Error()
	}
	if op.Outcome == chaos.OK {
		w.readBack(ctx, a, &op)
	}
	return op
}

// readBack finds the write an acknowledged operation made: for a register,
// the key's winner (ours, or a later write that superseded it); for a
// kernel, our latest record of the operation's kind.
func (w *workload) readBack(ctx context.Context, a *agent, op *chaos.Op) {
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	recs, err := a.client.Records(cctx, op.Key)
	if err != nil {
		w.mu.Lock()
		w.unread++
		w.mu.Unlock()
		return
	}
	var found *rpc.Record
	for i, r := range recs {
		if r.Key != op.Key {
			continue
		}
		if crdt.NamespaceOf(r.Key) != crdt.NSKernel {
			found = &recs[i]
			continue
		}
		want := map[string]string{"kernel-claim": "claim", "kernel-renew": "renew", "kernel-release": "release"}[op.Kind]
		if r.Node == a.id && r.Op == want && (found == nil || r.HLC > found.HLC) {
			found = &recs[i]
		}
	}
	if found == nil && op.Kind == "kernel-claim" && !op.Granted {
		return // a claim on a kernel seen held is denied without writing a record
	}
	if found == nil && op.Epoch > 0 && slices.ContainsFunc(recs, func(r rpc.Record) bool { return r.Key == op.Key && r.Epoch > op.Epoch }) {
		// A claim of a later epoch (another agent's, made when our lease
		// looked expired to it: a pause, a partition) reached the agent
		// between the write and this read: a kernel keeps no record of an
		// epoch below the winning one, so ours is gone, superseded as a
		// register's write is by a later one.
		w.mu.Lock()
		w.superseded++
		w.mu.Unlock()
		return
	}
	if found == nil {
		w.mu.Lock()
		w.missing = append(w.missing, fmt.Sprintf("%s on agent %d at %s: acked, but the agent holds no record of it", op.Kind, a.i-1, op.End.Format("15:04:05.000")))
		w.mu.Unlock()
		return
	}
	op.Acked = found
}

// dataClient issues svc, bl, kv and task operations on a, one at a time.
func (w *workload) dataClient(ctx context.Context, a *agent, rng *rand.Rand) {
	for pause(ctx, time.Duration(20+rng.IntN(40))*time.Millisecond) {
		if !a.up() {
			continue
		}
		var op chaos.Op
		switch p := rng.IntN(100); {
		case p < 25:
			inst := fmt.Sprintf("n%d-%d", a.i, rng.IntN(instances))
			status := []string{"up", "draining", "up"}[rng.IntN(3)]
			op = w.call(ctx, a, "svc-set", "svc/chaos/"+inst, nil, func(c context.Context) (bool, error) {
				_, err := a.client.ServiceSet(c, "chaos", inst, rpc.ServiceSet{Addr: fmt.Sprintf("10.0.0.%d:%d", a.i, rng.IntN(65536)), Status: status})
				return false, err
			})
		case p < 32:
			inst := fmt.Sprintf("n%d-%d", a.i, rng.IntN(instances))
			op = w.call(ctx, a, "svc-delete", "svc/chaos/"+inst, nil, func(c context.Context) (bool, error) {
				return false, a.client.ServiceDelete(c, "chaos", inst)
			})
		case p < 50:
			id := fmt.Sprintf("u%d", rng.IntN(blIDs))
			op = w.call(ctx, a, "bl-add", "bl/chaos/"+id, nil, func(c context.Context) (bool, error) {
				_, err := a.client.BlacklistAdd(c, "chaos", id, rpc.BlacklistAdd{Reason: fmt.Sprintf("agent %d", a.i)})
				return false, err
			})
		case p < 62:
			// A put, half of them conditional on the version the agent
			// shows (refused, and not counted as a write, if it moved).
			path := fmt.Sprintf("/chaos/k%d", rng.IntN(kvKeys))
			cond := rng.IntN(2) == 0
			op = w.call(ctx, a, "kv-put", "kv"+path, nil, func(c context.Context) (bool, error) {
				req := rpc.KVPut{Value: fmt.Sprintf("agent %d: %d", a.i, rng.IntN(1000))}
				if cond {
					var v uint64
					e, err := a.client.KVGet(c, path)
					switch {
					case err == nil:
						v = e.Version
					case rpc.CodeOf(err) != rpc.CodeNotFound:
						return false, err
					}
					req.IfVersion = &v
				}
				_, err := a.client.KVPut(c, path, req)
				return false, err
			})
		case p < 66:
			path := fmt.Sprintf("/chaos/k%d", rng.IntN(kvKeys))
			op = w.call(ctx, a, "kv-delete", "kv"+path, nil, func(c context.Context) (bool, error) {
				_, err := a.client.KVDelete(c, path, nil)
				return false, err
			})
		case p < 80:
			id := fmt.Sprintf("u%d", rng.IntN(blIDs))
			op = w.call(ctx, a, "bl-remove", "bl/chaos/"+id, nil, func(c context.Context) (bool, error) {
				return false, a.client.BlacklistRemove(c, "chaos", id)
			})
		case p < 92:
			id, owner := fmt.Sprintf("t%d", rng.IntN(tasks)), w.ids[rng.IntN(len(w.ids))]
			op = w.call(ctx, a, "task-assign", "task/"+id, nil, func(c context.Context) (bool, error) {
				_, err := a.client.TaskAssign(c, id, rpc.TaskAssign{Node: owner})
				return false, err
			})
		default:
			id := fmt.Sprintf("t%d", rng.IntN(tasks))
			op = w.call(ctx, a, "task-cancel", "task/"+id, nil, func(c context.Context) (bool, error) {
				_, err := a.client.TaskCancel(c, id)
				return false, err
			})
		}
		w.record(op)
	}
}

// kernelClient claims kernels on a, holds what it wins for a while
// (renewing once, besides the agent's own renewals) and releases it.
func (w *workload) kernelClient(ctx context.Context, a *agent, rng *rand.Rand) {
	for pause(ctx, time.Duration(100+rng.IntN(400))*time.Millisecond) {
		if !a.up() {
			continue
		}
		k := fmt.Sprintf("k%d", rng.IntN(kernels))
		key := "kernel/" + k
		var epoch uint64
		claim := w.call(ctx, a, "kernel-claim", key, &epoch, func(c context.Context) (bool, error) {
			res, err := a.client.KernelClaim(c, k, rpc.KernelClaim{Keep: true, TTLMillis: leaseTTL.Milliseconds(), Job: fmt.Sprintf("agent %d", a.i)})
			epoch = res.Kernel.Epoch
			return res.Granted, err
		})
		w.record(claim)
		if !claim.Granted {
			continue
		}
		if !pause(ctx, time.Duration(300+rng.IntN(1700))*time.Millisecond) {
			return
		}
		if rng.IntN(2) == 0 {
			w.record(w.call(ctx, a, "kernel-renew", key, &epoch, func(c context.Context) (bool, error) {
				_, err := a.client.KernelRenew(c, k, rpc.KernelRenew{TTLMillis: leaseTTL.Milliseconds()})
				return false, err
			}))
			if !pause(ctx, time.Duration(rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
		w.record(w.call(ctx, a, "kernel-release", key, &epoch, func(c context.Context) (bool, error) {
			_, err := a.client.KernelRelease(c, k, rpc.KernelRelease{})
			return false, err
		}))
	}
}

// sampler asks every agent for its kernel views every period; agents that
// do not answer within the period (paused, restarting) are left out of
// that round.
func (w *workload) sampler(ctx context.Context) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	for round := 0; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		var wg sync.WaitGroup
		for n, a := range w.agents {
			if !a.up() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, w.period)
				defer cancel()
				ks, err := a.client.KernelList(cctx)
				if err != nil {
					return
				}
				w.mu.Lock()
				w.samples = append(w.samples, chaos.Sample{Round: round, At: at, Agent: n, Kernels: ks})
				w.mu.Unlock()
			}()
		}
		wg.Wait()
	}
}
