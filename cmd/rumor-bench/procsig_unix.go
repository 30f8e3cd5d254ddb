//go:build unix

package main

import (
	"errors"
	"syscall"
	"time"
)

// killGroup sends SIGKILL to the process group of pid (every agent leads
// its own); a group already gone is not an error.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// childrenCPU returns the user + system CPU time of this process's reaped
// children so far.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
