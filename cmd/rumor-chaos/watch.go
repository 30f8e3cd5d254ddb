package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/rumor-dev/rumor/chaos"
	"github.com/rumor-dev/rumor/rpc"
)

// The watch workload: on every agent's host a client watches every key
// and drops its stream every 1 to 4 s, resuming with since set to the
// last cursor it read; chaos.WatchStream checks that the cursors run on
// one by one across those reconnects (and the agent's kills and pauses).
const watchKeepalive = time.Second

// watchClient runs a's watcher until ctx is done, into s.
func (w *workload) watchClient(ctx context.Context, a *agent, s *chaos.WatchStream, rng *rand.Rand) {
	since := ""
	for ctx.Err() == nil {
		if !a.up() {
			pause(ctx, 200*time.Millisecond)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Duration(1000+rng.IntN(3000))*time.Millisecond)
		read := false
		err := a.client.Watch(cctx, rpc.WatchRequest{Since: since, Keepalive: watchKeepalive}, func(ev rpc.Event) error {
			read = true
			w.mu.Lock()
			s.Line(ev.Op, ev.Cursor)
			w.mu.Unlock()
			if ev.Cursor != "" {
				since = ev.Cursor
			}
			if ev.Op == rpc.OpResync {
				since = ""
			}
			return nil
		})
		cancel()
		if read {
			w.mu.Lock()
			w.reconnects++
			w.mu.Unlock()
		}
		if err != nil && !read {
			pause(ctx, 100*time.Millisecond) // the agent is stopping or restarting
		}
	}
}
