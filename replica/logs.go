package replica

import (
	"log/slog"
	"sync"
	"time"
)

// LogEvery is how often refusals are summed up in the log: at most one
// line per path and reason in that time, with the count, so a flood of
// bad input cannot flood the log.
const LogEvery = 10 * time.Second

// logLimiter lets one log line through per LogEvery and counts the ones it
// holds back, for a line that could otherwise repeat per message.
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
	if !l.last.IsZero() && now.Sub(l.last) < LogEvery {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// refusalLog logs what was refused since its previous call, by path and
// reason.
type refusalLog struct {
	last map[Source]map[string]uint64
}

func (r *refusalLog) log(log *slog.Logger, now map[Source]PathCounters) {
	if r.last == nil {
		r.last = make(map[Source]map[string]uint64)
	}
	for _, src := range Sources {
		for _, reason := range Reasons {
			n := now[src].Refused[reason]
			if d := n - r.last[src][reason]; d > 0 {
				log.Warn("deltas refused", "path", src.String(), "reason", reason, "count", d, "total", n, "within", LogEvery)
			}
		}
		r.last[src] = now[src].Refused
	}
}
