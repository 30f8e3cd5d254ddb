//go:build !unix

package benchstat

import "time"

// CPUTime is not measured off Unix; CPU figures then read 0.
func CPUTime() time.Duration { return 0 }

// MachineBusy is not measured off Unix.
func MachineBusy() time.Duration { return 0 }

// ProcessCPU is not measured off Unix.
func ProcessCPU(int) time.Duration { return 0 }
