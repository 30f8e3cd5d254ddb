package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"time"
)

// A fault is applied, held for a while with the workload running, then
// undone; heal() then clears every partition and restores the far region.
type fault struct {
	name   string
	detail string
	undo   func() error
}

// faultKinds, in the order a seeded run draws from.
var faultKinds = []string{"partition-halves", "isolate-one", "bridge", "kill-restart", "pause", "clock-offset"}

// clockOffsets are what the clock fault sets an agent's offset to. Two
// agents 3 s apart exceed the default 2 s max_skew: each refuses the
// other's fresh stamps until they are old enough, then takes them (from
// anti-entropy), which the run exercises on purpose.
var clockOffsets = []time.Duration{-1500 * time.Millisecond, 0, 1500 * time.Millisecond}

// inject applies a fault of the given kind to the cluster.
func (r *runner) inject(kind string, rng *rand.Rand) (fault, error) {
	n := len(r.agents)
	perm := rng.Perm(n)
	nodes := func(idx []int) []int {
		var out []int
		for _, i := range idx {
			out = append(out, r.agents[i].i)
		}
		slices.Sort(out)
		return out
	}
	switch kind {
	case "partition-halves":
		cut := n / 2
		a, b := nodes(perm[:cut]), nodes(perm[cut:])
		return fault{kind, fmt.Sprintf("%v | %v", a, b), nil}, r.lab.partition(a, b)
	case "isolate-one":
		a, b := nodes(perm[:1]), nodes(perm[1:])
		return fault{kind, fmt.Sprintf("%v | %v", a, b), nil}, r.lab.partition(a, b)
	case "bridge":
		// perm[0] stays connected to both sides; the rest split in two.
		rest := perm[1:]
		a, b := nodes(rest[:len(rest)/2]), nodes(rest[len(rest)/2:])
		return fault{kind, fmt.Sprintf("%v | %v, bridged by %d", a, b, r.agents[perm[0]].i), nil}, r.lab.partition(a, b)
	case "kill-restart":
		ag := r.agents[perm[0]]
		f := fault{kind, fmt.Sprintf("kill -9 node %d, restart from its data dir", ag.i), func() error { return ag.start(r.lab, r.rumorBin, r.config, r.agents) }}
		return f, ag.signal(syscall.SIGKILL)
	case "pause":
		ag := r.agents[perm[0]]
		f := fault{kind, fmt.Sprintf("SIGSTOP node %d", ag.i), func() error { return ag.signal(syscall.SIGCONT) }}
		return f, ag.signal(syscall.SIGSTOP)
	case "clock-offset":
		ag := r.agents[perm[0]]
		var choices []time.Duration
		for _, o := range clockOffsets {
			if o != ag.offset {
				choices = append(choices, o)
			}
		}
		off := choices[rng.IntN(len(choices))]
		f := fault{kind, fmt.Sprintf("restart node %d with clock offset %v (was %v)", ag.i, off, ag.offset), nil}
		if err := ag.signal(syscall.SIGTERM); err != nil {
			return f, err
		}
		ag.offset = off
		return f, ag.start(r.lab, r.rumorBin, r.config, r.agents)
	}
	return fault{}, fmt.Errorf("unknown fault %q", kind)
}
