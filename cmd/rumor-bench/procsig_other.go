//go:build !unix

package main

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// procAttr sets nothing off Unix.
func procAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the process pid.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill()
	}
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// childrenCPU is not measured off Unix.
func childrenCPU() time.Duration { return 0 }
