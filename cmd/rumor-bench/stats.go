package main

import (
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// cpuMeter measures CPU use over an interval: this process's and, where
// the machine's total is known, everyone else's.
type cpuMeter struct {
	wall                time.Time
	self, all, children time.Duration
}

func startCPUMeter() cpuMeter {
	return cpuMeter{wall: time.Now(), self: benchstat.CPUTime(), all: benchstat.MachineBusy(), children: childrenCPU()}
}

// cores returns the cores this process and other processes kept busy on
// average since the meter started (others is 0 where unknown). Children
// this process reaped meanwhile (agent processes, go build) count as
// neither.
func (m cpuMeter) cores() (self, others float64) {
	self, _, others = m.coresWith(0)
	return self, others
}

// coresWith is cores for a run with agent processes: running is the CPU
// the agent processes still running used since the meter started; with the
// reaped children's, it makes agents, and counts not among others.
func (m cpuMeter) coresWith(running time.Duration) (self, agents, others float64) {
	wall := time.Since(m.wall).Seconds()
	if wall <= 0 {
		return 0, 0, 0
	}
	selfUsed := benchstat.CPUTime() - m.self
	agentsUsed := max(childrenCPU()-m.children+running, 0)
	self, agents = selfUsed.Seconds()/wall, agentsUsed.Seconds()/wall
	if m.all > 0 {
		others = max((benchstat.MachineBusy()-m.all-selfUsed-agentsUsed).Seconds(), 0) / wall
	}
	return self, agents, others
}
