package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
)

// CatchUpResult is figure 6 for one key count: how long a new agent takes
// to hold everything a running cluster holds, and how long that agent
// takes to restart with it on disk.
type CatchUpResult struct {
	Keys         int `json:"keys"`
	Agents       int `json:"agents"` // cluster size before the join
	PayloadBytes int `json:"payload_bytes"`
	// FillSeconds is writing the keys (bl add, spread over the agents)
	// until every agent held them all.
	FillSeconds float64 `json:"fill_seconds"`
	// StartMs is agent.New + Start of the new agent; CatchUpMs runs from
	// just before agent.New until its store held every key.
	StartMs   float64 `json:"start_ms"`
	CatchUpMs float64 `json:"catch_up_ms"`
	// Repaired is how many deltas the new agent received by anti-entropy
	// (the rest came by gossip), from its status.
	Repaired uint64 `json:"repaired_by_anti_entropy"`
	// CloseMs is the new agent's Close() (which flushes its state file);
	// RestartMs is agent.New + Start from its data dir afterwards.
	CloseMs   float64 `json:"close_ms"`
	RestartMs float64 `json:"restart_ms"`
	// BlAtRestart is how many bl/ keys the store listed right after Start
	// returned (RestartOK: all of them), LenAtRestart its Len() then
	// (node/ heartbeats are kept in memory only, so they come back as the
	// agents are heard again).
	BlAtRestart  int  `json:"bl_at_restart"`
	LenAtRestart int  `json:"len_at_restart"`
	RestartOK    bool `json:"restart_ok"`
	// StateFileBytes is the new agent's state.db size after its close.
	StateFileBytes int64 `json:"state_file_bytes"`
	// LoadStart is the 1-minute load average when the phase began.
	LoadStart  float64 `json:"load_start"`
	CPUCores   float64 `json:"cpu_cores"`
	OtherCores float64 `json:"other_cores"`
}

// catchUpParams are figure 6's knobs.
type catchUpParams struct {
	agents int
	window int           // most writes ahead of the slowest agent while filling
	poll   time.Duration // how often the new agent's store is read
}

const catchUpList = "catchup"

// catchUpID names the i-th key's blacklist id.
func catchUpID(i int) string { return fmt.Sprintf("k%07d", i) }

// runCatchUp starts cp.agents agents, fills them with keys blacklist
// entries, starts one more agent joining agent 0 and times until it holds
// them all; then it closes that agent and times its restart.
func runCatchUp(ctx context.Context, keys int, cp catchUpParams, p params) (res CatchUpResult, err error) {
	n := cp.agents
	res = CatchUpResult{Keys: keys, Agents: n, PayloadBytes: p.payload, LoadStart: benchstat.LoadAverage()}
	c, err := startCluster(ctx, n, p.cluster)
	if err != nil {
		return res, err
	}
	defer c.close()
	meter := startCPUMeter()
	defer func() { res.CPUCores, res.OtherCores = meter.cores() }()

	// Fill: one writer per agent, each adding every n-th key, never more
	// than cp.window ahead of the agent that holds the fewest.
	reason := blacklistReason(p.payload)
	held := func() int64 {
		least := int64(-1)
		for _, a := range c.agents {
			if k := int64(a.Store().Len() - n); least < 0 || k < least { // about: n node/ keys
				least = k
			}
		}
		return least
	}
	fillStart := time.Now()
	var (
		written  atomic.Int64
		writeErr atomic.Pointer[error]
		wg       sync.WaitGroup
	)
	for w, a := range c.agents {
		wg.Go(func() {
			for i := w; i < keys; i += n {
				for written.Load()-held() >= int64(cp.window) {
					if ctx.Err() != nil || writeErr.Load() != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := a.BlacklistAdd(ctx, catchUpList, catchUpID(i), rpc.BlacklistAdd{Reason: reason}); err != nil {
					writeErr.CompareAndSwap(nil, &err)
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	if e := writeErr.Load(); e != nil {
		return res, fmt.Errorf("bl add: %w", *e)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	fillWithin := p.drain + time.Duration(keys)*time.Millisecond
	if err := pollUntil(ctx, time.Now().Add(fillWithin), 20*time.Millisecond, func() error {
		for i, a := range c.agents {
			if k := keysBesidesNodes(a.Store(), keys); k < keys {
				return fmt.Errorf("agent %d holds %d of %d keys", i, k, keys)
			}
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("fill: %w", err)
	}
	res.FillSeconds = time.Since(fillStart).Seconds()

	// The new agent joins through agent 0.
	cfg := c.config(fmt.Sprintf("joiner-%d", keys))
	cfg.Bootstrap = c.agents[0].Addrs()
	began := time.Now()
	late, err := c.startAgent(ctx, n, cfg, uint64(n))
	if err != nil {
		return res, fmt.Errorf("start the new agent: %w", err)
	}
	c.agents = append(c.agents, late) // closed with the cluster
	c.cfgs = append(c.cfgs, cfg)
	res.StartMs = benchstat.Ms(time.Since(began))
	catchWithin := 60*time.Second + time.Duration(keys)*time.Millisecond
	if err := pollUntil(ctx, began.Add(catchWithin), cp.poll, func() error {
		if k := keysBesidesNodes(late.Store(), keys); k < keys {
			return fmt.Errorf("the new agent holds %d of %d keys", k, keys)
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("catch-up: %w", err)
	}
	res.CatchUpMs = benchstat.Ms(time.Since(began))
	if bl := len(late.Store().List("bl/")); bl != keys {
		return res, fmt.Errorf("catch-up: the new agent lists %d bl keys, want %d", bl, keys)
	}
	if st, err := late.Status(ctx); err == nil {
		res.Repaired = st.AntiEntropy.Repaired
	}

	// Restart it with every key on disk.
	closeAt := time.Now()
	if err := late.Close(); err != nil {
		return res, fmt.Errorf("close the new agent: %w", err)
	}
	res.CloseMs = benchstat.Ms(time.Since(closeAt))
	res.StateFileBytes = fileSize(filepath.Join(cfg.DataDir, "state.db"))
	restartAt := time.Now()
	if err := c.restart(ctx, n, uint64(n+100)); err != nil {
		return res, err
	}
	res.RestartMs = benchstat.Ms(time.Since(restartAt))
	again := c.agents[n]
	res.LenAtRestart = again.Store().Len()
	res.BlAtRestart = len(again.Store().List("bl/"))
	res.RestartOK = res.BlAtRestart == keys
	if !res.RestartOK {
		return res, fmt.Errorf("restart: the store listed %d bl keys at once, want %d", res.BlAtRestart, keys)
	}
	return res, nil
}

// keysBesidesNodes returns how many keys other than node/ heartbeats s
// holds, exactly once that can be want or more; below that it returns
// Len(), an upper bound. Len() is cheap; listing node/ scans every key,
// so it happens only near the end.
func keysBesidesNodes(s *store.Store, want int) int {
	n := s.Len()
	if n < want {
		return n
	}
	return n - len(s.List("node/"))
}

// pollUntil calls cond every interval until it returns nil; past the
// deadline it returns cond's last error.
func pollUntil(ctx context.Context, deadline time.Time, interval time.Duration, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return err
		}
	}
}

// fileSize returns the size of the file at path, or -1.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}
