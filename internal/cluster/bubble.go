package cluster

import (
	"sync"
	"testing"
	"testing/synctest"

	flow "github.com/libp2p/go-flow-metrics"
)

var outsideBubble sync.Once

// Test runs f in a synctest bubble, where the simulated cluster's time is
// virtual: it advances only when every goroutine in the bubble waits for
// time, so a cluster can run minutes of timers in milliseconds and no test
// result depends on how fast the machine is.
//
// It first starts, outside any bubble, the process-wide goroutine that
// libp2p's bandwidth meters share (go-flow-metrics' sweeper): started
// inside a bubble, it would outlive the test there, which synctest
// refuses.
func Test(t *testing.T, f func(t *testing.T)) {
	outsideBubble.Do(func() { flow.NewMeter().Mark(1) })
	synctest.Test(t, f)
}
