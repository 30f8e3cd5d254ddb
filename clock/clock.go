// Package clock gives the agent an injectable wall clock, so tests can fake
// time and simulate skew between nodes.
package clock

import (
	"fmt"
	"sync"
	"time"
)

// Clock reads the wall clock. Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// System is the real wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Offset is a clock that runs a fixed offset from Base, to simulate a node
// whose clock is skewed.
type Offset struct {
	Base   Clock
	Offset time.Duration
}

// Now returns Base.Now() plus the offset.
func (o Offset) Now() time.Time { return o.Base.Now().Add(o.Offset) }

// ParseOffset parses an offset such as "+1.5s", "-200ms" or "0".
func ParseOffset(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("clock: bad offset %q: %w", s, err)
	}
	return d, nil
}

// Fake is a manually advanced clock for tests.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a fake clock reading t.
func NewFake(t time.Time) *Fake { return &Fake{t: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Advance moves the fake time forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}
