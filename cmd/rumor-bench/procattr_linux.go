//go:build linux

package main

import "syscall"

// procAttr puts an agent process in its own process group (so that kill
// reaches all of it, and a terminal's Ctrl-C reaches only the bench, which
// then stops the agents) and has the kernel SIGKILL it if the bench dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
