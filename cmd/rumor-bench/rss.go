package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSSResult is the second half of figure 4: the resident memory of one idle
// `rumor agent` process with the default config (but ephemeral ports and a
// metrics listener on 127.0.0.1:0), read from /proc/<pid>/status.
type RSSResult struct {
	IdleSeconds float64 `json:"idle_seconds"`
	// VmRSS is the whole resident set: RssAnon (heap, stacks: private to
	// the agent) plus RssFile (the binary's pages and the mapped state
	// file, shared with the page cache).
	VmRSS   int64 `json:"vm_rss_bytes"`
	RssAnon int64 `json:"rss_anon_bytes"`
	RssFile int64 `json:"rss_file_bytes"`
	// Static is true when the binary is statically linked (no libc mapped).
	Static bool `json:"static"`
}

// runRSS starts one agent process and reads its resident memory after idle.
func runRSS(ctx context.Context, opt procOptions, idle time.Duration) (RSSResult, error) {
	res := RSSResult{}
	opt.metricsAddr = "127.0.0.1:0"
	c, err := startProcCluster(ctx, 1, opt)
	if err != nil {
		return res, err
	}
	defer c.close()
	began := time.Now()
	if err := sleepCtx(ctx, idle); err != nil {
		return res, err
	}
	pid := c.agents[0].pid()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return res, fmt.Errorf("idle RSS needs /proc (Linux): %w", err)
	}
	res.IdleSeconds = time.Since(began).Seconds()
	if res.VmRSS, res.RssAnon, res.RssFile, err = parseProcStatus(status); err != nil {
		return res, err
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return res, err
	}
	res.Static = !bytes.Contains(maps, []byte("/libc."))
	return res, nil
}

// parseProcStatus reads VmRSS, RssAnon and RssFile (in kB) from a
// /proc/<pid>/status file and returns them in bytes.
func parseProcStatus(b []byte) (rss, anon, file int64, err error) {
	want := map[string]*int64{"VmRSS:": &rss, "RssAnon:": &anon, "RssFile:": &file}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" || want[f[0]] == nil {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("/proc status: %s %q: %w", f[0], f[1], err)
		}
		*want[f[0]] = kb << 10
		found++
	}
	if found != len(want) {
		return 0, 0, 0, fmt.Errorf("/proc status: found %d of VmRSS, RssAnon, RssFile", found)
	}
	return rss, anon, file, nil
}
