//go:build !unix

package main

import "time"

// cpuTime is not measured off Unix; the CPU figure then reads 0.
func cpuTime() time.Duration { return 0 }

// machineBusy is not measured off Unix.
func machineBusy() time.Duration { return 0 }
