package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// TestMembershipLogCountsVerdicts feeds the hook the lines the agent logs
// for membership changes (agent.Agent.logMembership).
func TestMembershipLogCountsVerdicts(t *testing.T) {
	v := newVerdicts(2)
	log := slog.New(membershipLog{agent: 1, v: v})
	log.Info("member joined", "member", "A")
	log.Info("member suspect", "member", "A", "was", "alive") // before the idle time: not counted
	log.Debug("member dead", "member", "A")                   // below Info: never logged as a change
	v.begin(time.Now(), map[string]int{"A": 0})
	log.Info("member suspect", "member", "A", "was", "alive")
	log.Warn("member dead", "member", "A")
	log.Info("member alive", "member", "A", "was", "dead")
	log.Info("member suspect", "member", "B", "was", "alive") // unknown id: counted, index -1
	log.Info("something else", "member", "A")
	log.With("k", "v").Info("member joined", "member", "C")
	v.end()
	log.Warn("member dead", "member", "A") // after the idle time (closing): not counted

	var r IdleResult
	v.fill(&r)
	if r.Joins != 2 || r.FalseSuspect != 2 || r.FalseDead != 1 || r.Recovered != 1 {
		t.Fatalf("joins %d, suspect %d, dead %d, recovered %d; want 2, 2, 1, 1", r.Joins, r.FalseSuspect, r.FalseDead, r.Recovered)
	}
	if len(r.Events) != 4 {
		t.Fatalf("events %+v, want 4", r.Events)
	}
	if e := r.Events[1]; e.Observer != 1 || e.Member != 0 || e.To != "dead" || e.Source != "log" {
		t.Errorf("dead event %+v", e)
	}
	if e := r.Events[2]; e.From != "dead" || e.To != "alive" {
		t.Errorf("recovery event %+v", e)
	}
	if e := r.Events[3]; e.Member != -1 {
		t.Errorf("unknown member's event %+v, want member -1", e)
	}
}

func TestObserveCountsPolledChanges(t *testing.T) {
	t0 := time.Unix(1000, 0)
	member := func(id, state string, connected bool, heard time.Duration) rpc.Member {
		return rpc.Member{Node: id, State: state, Connected: connected, LastHeard: t0.Add(-heard)}
	}
	v := newVerdicts(1)
	self := rpc.Member{Node: "S", Self: true, State: "alive"}
	// Before begin: states are remembered, nothing counts.
	v.observe(t0, 0, []rpc.Member{self, member("A", "alive", true, 0), member("B", "suspect", true, 9*time.Second)})
	v.begin(t0, map[string]int{"S": 0, "A": 1, "B": 2})
	v.observe(t0, 0, []rpc.Member{self, member("A", "suspect", false, 500*time.Millisecond), member("B", "suspect", true, 2*time.Second)})
	v.observe(t0, 0, []rpc.Member{self, member("A", "dead", false, 10*time.Second), member("B", "alive", true, 0), member("C", "unknown", false, 0)})
	v.observe(t0, 0, []rpc.Member{self, member("A", "absent", false, 0), member("B", "alive", true, 0), member("C", "alive", true, 0)})
	var r IdleResult
	v.fill(&r)
	if r.PolledSuspect != 1 || r.PolledDead != 1 || r.PolledOther != 1 || r.Disconnects != 1 {
		t.Errorf("polled suspect %d, dead %d, other %d, disconnects %d; want 1, 1, 1, 1", r.PolledSuspect, r.PolledDead, r.PolledOther, r.Disconnects)
	}
	if r.LongestSilenceMs != 10_000 {
		t.Errorf("longest silence %v ms, want 10000", r.LongestSilenceMs)
	}
	if r.FalseDead != 0 || r.FalseSuspect != 0 {
		t.Errorf("polling changed the log counts: %+v", r)
	}
	if len(r.Events) != 3 || r.Events[0].Member != 1 || r.Events[0].Source != "poll" {
		t.Errorf("events %+v", r.Events)
	}
}

// TestIdleSmallCluster runs figure 8 on 3 agents for a second: the log
// hook must see every join (else runIdle fails) and the poller must run.
func TestIdleSmallCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	p := params{cluster: clusterOptions{heartbeat: time.Second, formTimeout: 60 * time.Second, seed: 1}}
	ip := idleParams{agents: 3, duration: time.Second, poll: 50 * time.Millisecond, progress: 300 * time.Millisecond}
	r, err := runIdle(context.Background(), io.Discard, ip, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Agents != 3 || r.Joins != 6 || r.IdleSeconds < 1 || r.HeartbeatMs != 1000 || r.SuspectAfterMs != 1500 || r.DeadAfterMs != 4000 {
		t.Errorf("result %+v", r)
	}
	if len(r.Timeline) < 2 || r.Timeline[0].AtSeconds <= 0 {
		t.Errorf("timeline %+v, want an entry every 300 ms", r.Timeline)
	}
	if r.LongestSilenceMs <= 0 {
		t.Errorf("longest silence %v ms: the poller saw no member", r.LongestSilenceMs)
	}
}
