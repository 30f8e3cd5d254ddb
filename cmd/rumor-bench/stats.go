package main

import (
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// cpuMeter measures CPU use over an interval: this process's and, where
// the machine's total is known, everyone else's.
type cpuMeter struct {
	wall      time.Time
	self, all time.Duration
}

func startCPUMeter() cpuMeter {
	return cpuMeter{wall: time.Now(), self: benchstat.CPUTime(), all: benchstat.MachineBusy()}
}

// cores returns the cores this process and other processes kept busy on
// average since the meter started (others is 0 where unknown).
func (m cpuMeter) cores() (self, others float64) {
	wall := time.Since(m.wall).Seconds()
	if wall <= 0 {
		return 0, 0
	}
	selfUsed := benchstat.CPUTime() - m.self
	self = selfUsed.Seconds() / wall
	if m.all > 0 {
		others = max((benchstat.MachineBusy()-m.all-selfUsed).Seconds(), 0) / wall
	}
	return self, others
}
