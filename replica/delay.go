package replica

import (
	"slices"
	"sync"
	"time"
)

// delays keeps the last n gossip delays observed (receive time minus the
// write's HLC wall time): their p99 sizes the kernel claim settle window and
// the cutoff of periodic anti-entropy exchanges.
type delays struct {
	mu      sync.Mutex
	samples []int64
	next    int
	full    bool
}

func newDelays(n int) *delays { return &delays{samples: make([]int64, n)} }

func (t *delays) add(ms int64) {
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
func (t *delays) p99() (time.Duration, int) {
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
