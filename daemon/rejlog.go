package daemon

import (
	"context"
	"maps"
	"slices"
	"time"
)

// rejectionLogEvery is how often refusals are summed up in the log.
const rejectionLogEvery = 10 * time.Second

// rejectionLog logs refused gossip messages and anti-entropy deltas as at
// most one line per reason per rejectionLogEvery, with the count since the
// last line: a flood of bad messages cannot flood the log.
type rejectionLog struct {
	last      map[string]uint64
	aeRefused uint64
}

func (a *Agent) rejectionLoop(ctx context.Context) {
	r := &rejectionLog{last: make(map[string]uint64)}
	every(ctx, rejectionLogEvery, func() { a.logRejections(r) })
}

// logRejections logs what was refused since the previous call.
func (a *Agent) logRejections(r *rejectionLog) {
	cur := a.node.Rejections()
	for _, reason := range slices.Sorted(maps.Keys(cur)) {
		if n := cur[reason] - r.last[reason]; n > 0 {
			a.log.Warn("gossip messages refused", "reason", reason, "count", n, "total", cur[reason], "since", rejectionLogEvery)
		}
	}
	r.last = cur
	if ae := a.sync.refused.Load(); ae > r.aeRefused {
		a.log.Warn("anti-entropy deltas refused", "count", ae-r.aeRefused, "total", ae, "since", rejectionLogEvery)
		r.aeRefused = ae
	}
}
