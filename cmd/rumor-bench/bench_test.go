package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
)

func TestTrackerWaitsForEveryOtherAgent(t *testing.T) {
	tr := newTracker()
	t0 := time.Now()
	tr.begin("k", 1, 3) // agent 1 writes; agents 0 and 2 must apply
	start := tr.pending["k"].start
	tr.seen("k", 1, start.Add(time.Millisecond))   // the writer itself: ignored
	tr.seen("k", 0, start.Add(3*time.Millisecond)) // first receiver
	tr.seen("k", 0, start.Add(9*time.Millisecond)) // duplicate: ignored
	tr.seen("other", 2, t0)                        // untracked key: ignored
	if n := tr.outstanding(); n != 1 {
		t.Fatalf("outstanding = %d after one of two receivers, want 1", n)
	}
	tr.seen("k", 2, start.Add(5*time.Millisecond))
	if n := tr.outstanding(); n != 0 {
		t.Fatalf("outstanding = %d after both receivers, want 0", n)
	}
	if got := tr.latencies(); !slices.Equal(got, []time.Duration{5 * time.Millisecond}) {
		t.Fatalf("latencies = %v, want [5ms] (time to the last receiver)", got)
	}
}

func TestParseSizes(t *testing.T) {
	if got, err := parseSizes(" 8, 30,"); err != nil || !slices.Equal(got, []int{8, 30}) {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1", "x", "8,-3"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) succeeded", bad)
		}
	}
}

func TestPayloadSizes(t *testing.T) {
	req := servicePayload(200)
	if n := len(crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags})); n != 200 {
		t.Errorf("svc payload encodes to %d bytes, want 200", n)
	}
	if n := len(crdt.Encode(crdt.BlacklistValue{Reason: blacklistReason(200)})); n != 200 {
		t.Errorf("bl payload encodes to %d bytes, want 200", n)
	}
}

func TestMemorySmall(t *testing.T) {
	res, err := runMemory(600, 200, 256)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != 600 || res.PayloadBytes != 200 || res.Store != memoryStore || res.BytesPerKey <= 0 {
		t.Errorf("result %+v", res)
	}
}

func TestParseSizesOrNone(t *testing.T) {
	for _, none := range []string{"0", " none "} {
		if got, err := parseSizesOrNone("-proc-n", none); err != nil || got != nil {
			t.Errorf("parseSizesOrNone(%q) = %v, %v; want no sizes", none, got, err)
		}
	}
	if got, err := parseSizesOrNone("-proc-n", "10,30"); err != nil || !slices.Equal(got, []int{10, 30}) {
		t.Errorf("parseSizesOrNone(10,30) = %v, %v", got, err)
	}
	if _, err := parseSizesOrNone("-proc-n", "0,5"); err == nil || !strings.Contains(err.Error(), "-proc-n") {
		t.Errorf("parseSizesOrNone(0,5) = %v; want an error naming the flag", err)
	}
}

func TestProcConfigIsAValidAgentConfig(t *testing.T) {
	opt := procOptions{heartbeat: 200 * time.Millisecond, suspect: 600 * time.Millisecond, dead: 2 * time.Second}
	cfg := config.DefaultConfig()
	if err := cfg.LoadYAML([]byte(procConfig(opt)), "agent.yaml"); err != nil {
		t.Fatal(err)
	}
	if cfg.Heartbeat != opt.heartbeat || cfg.SuspectAfter != opt.suspect || cfg.DeadAfter != opt.dead || cfg.MetricsAddr != "" || cfg.Cluster != "bench" {
		t.Errorf("config from procConfig: heartbeat %v suspect %v dead %v metrics %q cluster %q",
			cfg.Heartbeat, cfg.SuspectAfter, cfg.DeadAfter, cfg.MetricsAddr, cfg.Cluster)
	}
}

func TestAgentEnvDropsRumorVariables(t *testing.T) {
	t.Setenv("RUMOR_METRICS_ADDR", "127.0.0.1:9464")
	for _, kv := range agentEnv(0) {
		if strings.HasPrefix(kv, "RUMOR_") {
			t.Errorf("agentEnv keeps %s", kv)
		}
	}
}

func TestAgentEnvSetsGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "4")
	var got []string
	for _, kv := range agentEnv(1) {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			got = append(got, kv)
		}
	}
	if len(got) != 1 || got[0] != "GOMAXPROCS=1" {
		t.Errorf("agentEnv(1) sets %v, want only GOMAXPROCS=1", got)
	}
	if !slices.Contains(agentEnv(0), "GOMAXPROCS=4") {
		t.Error("agentEnv(0) drops the inherited GOMAXPROCS")
	}
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\trumor\nVmHWM:\t   30000 kB\nVmRSS:\t   28396 kB\nRssAnon:\t    5948 kB\nRssFile:\t   22448 kB\nRssShmem:\t       0 kB\n"
	rss, anon, file, err := parseProcStatus([]byte(status))
	if err != nil || rss != 28396<<10 || anon != 5948<<10 || file != 22448<<10 {
		t.Errorf("parseProcStatus = %d, %d, %d, %v", rss, anon, file, err)
	}
	if _, _, _, err := parseProcStatus([]byte("VmRSS:\t 1 kB\n")); err == nil {
		t.Error("a status without RssAnon and RssFile parsed")
	}
	if _, _, _, err := parseProcStatus([]byte("VmRSS:\t x kB\nRssAnon:\t 1 kB\nRssFile:\t 1 kB\n")); err == nil {
		t.Error("a non-numeric VmRSS parsed")
	}
}
