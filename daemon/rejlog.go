package daemon

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
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
	every(ctx, rejectionLogEvery, func() { r.log(a.log, a.node.Rejections(), a.sync.refused.Load()) })
}

// log logs what was refused since the previous call, given the totals:
// gossip messages by reason, and anti-entropy deltas.
func (r *rejectionLog) log(log *slog.Logger, gossip map[string]uint64, aeRefused uint64) {
	for _, reason := range slices.Sorted(maps.Keys(gossip)) {
		if n := gossip[reason] - r.last[reason]; n > 0 {
			log.Warn("gossip messages refused", "reason", reason, "count", n, "total", gossip[reason], "within", rejectionLogEvery)
		}
	}
	r.last = gossip
	if aeRefused > r.aeRefused {
		log.Warn("anti-entropy deltas refused", "count", aeRefused-r.aeRefused, "total", aeRefused, "within", rejectionLogEvery)
		r.aeRefused = aeRefused
	}
}

// logLimiter lets one log line through per rejectionLogEvery and counts
// the ones it holds back, for a line that could otherwise repeat per
// message.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// allow reports whether to log now, and how many lines were held back
// since the last one let through.
func (l *logLimiter) allow(now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < rejectionLogEvery {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
