package daemon

import (
	"slices"
	"sync"
	"time"
)

// delayTracker keeps the last n observed gossip delays (receive time minus
// the write's HLC wall time) to size the kernel claim settle window.
type delayTracker struct {
	mu      sync.Mutex
	samples []int64
	next    int
	full    bool
}

func newDelayTracker(n int) *delayTracker { return &delayTracker{samples: make([]int64, n)} }

func (t *delayTracker) add(ms int64) {
	if ms < 0 {
		ms = 0 // a peer's clock slightly ahead of ours
	}
	t.mu.Lock()
	t.samples[t.next] = ms
	t.next = (t.next + 1) % len(t.samples)
	t.full = t.full || t.next == 0
	t.mu.Unlock()
}

// p99 returns the 99th percentile of the samples and how many there are.
func (t *delayTracker) p99() (time.Duration, int) {
	t.mu.Lock()
	n := t.next
	if t.full {
		n = len(t.samples)
	}
	s := slices.Clone(t.samples[:n])
	t.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return time.Duration(s[(n*99)/100]) * time.Millisecond, n
}

// settleWindow is how long a claimant waits for competing claims: the
// configured value, or 3 x measured p99 gossip delay within [min, max].
func (a *Agent) settleWindow() time.Duration {
	if a.cfg.Settle > 0 {
		return a.cfg.Settle
	}
	p99, _ := a.delays.p99()
	return min(max(3*p99, a.cfg.SettleMin), a.cfg.SettleMax)
}
