package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
	"github.com/rumor-dev/rumor/config"
)

// runFailureFigures runs figures 5, 6 and 7 (those p.phases selects) and
// stores their results in rep; fail records a phase's error. Figure 5 runs
// agent processes of the binary rumorBin returns.
func runFailureFigures(ctx context.Context, out io.Writer, p params, rumorBin func() (string, error), rep *Report, fail func(string, error)) {
	if p.phases[5] && ctx.Err() == nil {
		fp := p.failure
		fmt.Fprintf(out, "[5] failure detection: %d agent processes, %d kill -9/restart trials (heartbeat %v, suspect_after %v, dead_after %v)...\n",
			fp.agents, fp.trials, fp.heartbeat, fp.suspect, fp.dead)
		var r FailureResult
		bin, err := rumorBin()
		if err == nil {
			opt := p.procs
			opt.bin = bin
			r, err = runFailure(ctx, fp, opt)
		}
		if err != nil {
			fail("failure detection", err)
		}
		if r.Trials > 0 || err == nil {
			rep.Failure = &r
		}
	}
	if p.phases[6] {
		for _, k := range p.catchUpKeys {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(out, "[6] catch-up: %d agents holding %d keys, one joins, then restarts...\n", p.catchUp.agents, k)
			r, err := runCatchUp(ctx, k, p.catchUp, p)
			if err != nil {
				fail(fmt.Sprintf("catch-up K=%d", k), err)
			}
			if r.CatchUpMs > 0 || err == nil {
				rep.CatchUp = append(rep.CatchUp, r)
			}
		}
	}
	if p.phases[7] && ctx.Err() == nil {
		pp := p.partition
		fmt.Fprintf(out, "[7] partition heal: %d agents cut in halves, %d rounds...\n", pp.agents, pp.rounds)
		r, err := runPartition(ctx, pp, p)
		if err != nil {
			fail("partition heal", err)
		}
		if r.Rounds > 0 || err == nil {
			rep.Partition = &r
		}
	}
}

// printFailureFigures prints figures 5, 6 and 7 as plain tables.
func printFailureFigures(tw io.Writer, rep Report, p params) {
	cores := rep.Machine.NumCPU
	row := func(what string, s benchstat.Summary) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", what, benchstat.FmtMs(s.P50Ms), benchstat.FmtMs(s.P99Ms), benchstat.FmtMs(s.MaxMs), s.N)
	}
	fmt.Fprintln(tw)
	if f := rep.Failure; f != nil {
		fmt.Fprintf(tw, "5. Failure detection: N=%d agent processes on 127.0.0.1, heartbeat %v, suspect_after %v, dead_after %v%s; %d trials, each killing one non-bootstrap agent in turn;\n   survivors' local APIs (members, svc get) polled every %d ms\n",
			f.Agents, msDur(f.HeartbeatMs), msDur(f.SuspectAfterMs), msDur(f.DeadAfterMs), defaultsNote(f), f.Trials, f.PollMs)
		fmt.Fprintf(tw, "   kill = %s\n", f.Kill)
		fmt.Fprintln(tw, "measure\tp50 ms\tp99 ms\tmax ms\tn\t")
		row("dead on every survivor and its svc entry down (from the SIGKILL)", f.Detection)
		row("suspect (or dead) on every survivor (from the SIGKILL)", f.Suspect)
		row("restart from its data dir until alive and svc up everywhere", f.Rejoin)
		row("SIGKILL until the victim process was reaped", f.Reaped)
		fmt.Fprintf(tw, "CPU over the trials: bench %.2f, agents %.2f, other processes %.2f, of %d cores; load average at the start %.2f\n", f.CPUCores, f.AgentCores, f.OtherCores, cores, f.LoadStart)
		fmt.Fprintf(tw, "(expected detection from the settings: dead_after minus the time since the last heartbeat (0..heartbeat), plus up to one detector tick (heartbeat/4, at least 50 ms);\n suspect comes at once when the agent's lost connections count as a hint, else after suspect_after of silence)\n")
	} else if p.phases[5] {
		fmt.Fprintln(tw, "5. Failure detection: (not measured)")
	}
	fmt.Fprintln(tw)
	if len(rep.CatchUp) > 0 {
		c0 := rep.CatchUp[0]
		fmt.Fprintf(tw, "6. Catch-up: %d agents hold K bl keys (%d B values, added spread over them); a new agent joins agent 0 and polls its store.Len() every %d ms; then it restarts from its data dir\n",
			c0.Agents, c0.PayloadBytes, int(p.catchUp.poll/time.Millisecond))
		fmt.Fprintln(tw, "keys\tfill\tnew agent New+Start\tholds all K after\trepaired by anti-entropy\tclose\trestart New+Start\tkeys right after restart\tstate.db\tCPU bench/others\tload\t")
		for _, c := range rep.CatchUp {
			ok := "ok"
			if !c.RestartOK {
				ok = "WRONG"
			}
			fmt.Fprintf(tw, "%d\t%.1f s\t%s ms\t%s ms\t%d\t%s ms\t%s ms\t%d bl of %d %s (Len %d)\t%s\t%.2f / %.2f of %d\t%.2f\t\n",
				c.Keys, c.FillSeconds, benchstat.FmtMs(c.StartMs), benchstat.FmtMs(c.CatchUpMs), c.Repaired, benchstat.FmtMs(c.CloseMs), benchstat.FmtMs(c.RestartMs),
				c.BlAtRestart, c.Keys, ok, c.LenAtRestart, benchstat.FmtBytes(float64(c.StateFileBytes)), c.CPUCores, c.OtherCores, cores, c.LoadStart)
		}
		fmt.Fprintf(tw, "(\"holds all K after\" runs from just before agent.New until its store holds K keys besides the node/ heartbeats; \"keys right after restart\" is read as soon as Start returns)\n")
	} else if p.phases[6] {
		fmt.Fprintln(tw, "6. Catch-up: (not measured)")
	}
	fmt.Fprintln(tw)
	if r := rep.Partition; r != nil {
		fmt.Fprintf(tw, "7. Partition heal: N=%d cut %d|%d (netcut gaters + ClosePeer), %d bl keys written per side, one kernel claim per side, heal right after both grants;\n   each round starts from a formed cluster;\n",
			r.Agents, r.Agents/2, r.Agents-r.Agents/2, r.KeysPerSide)
		fmt.Fprintf(tw, "   settle %v, redial %v..%v, anti-entropy every %v (and on each new connection), heartbeat %v, lease ttl %v\n",
			msDur(r.SettleMs), msDur(r.RedialMinMs), msDur(r.RedialMaxMs), msDur(r.AntiEntropyMs), msDur(r.HeartbeatMs), msDur(r.LeaseTTLMs))
		fmt.Fprintf(tw, "rounds: %d; both sides granted the kernel in %d of them; the loser's lost event was missing in %d\n", r.Rounds, r.BothGranted, r.LostMissing)
		fmt.Fprintln(tw, "measure\tp50 ms\tp99 ms\tmax ms\tn\t")
		row("convergence after heal (identical bl/, same kernel holder/epoch everywhere)", r.Convergence)
		row("double-grant window (second grant until the loser's lease \"lost\" event)", r.DoubleGrant)
		row("formed again (all connected, every member alive everywhere)", r.Reformed)
		row("cut in place (partition until no link across)", r.Cut)
		fmt.Fprintf(tw, "CPU over the rounds: bench %.2f, other processes %.2f, of %d cores; load average at the start %.2f\n", r.CPUCores, r.OtherCores, cores, r.LoadStart)
	} else if p.phases[7] {
		fmt.Fprintln(tw, "7. Partition heal: (not measured)")
	}
}

// defaultsNote says whether the detector settings are the agent's defaults.
func defaultsNote(f *FailureResult) string {
	d := config.DefaultConfig()
	if msDur(f.HeartbeatMs) == d.Heartbeat && msDur(f.SuspectAfterMs) == d.SuspectAfter && msDur(f.DeadAfterMs) == d.DeadAfter {
		return " (the agent's defaults)"
	}
	return fmt.Sprintf(" (not the defaults: %v / %v / %v)", d.Heartbeat, d.SuspectAfter, d.DeadAfter)
}

// msDur turns milliseconds back into a duration for printing.
func msDur(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// parsePhases parses the -phases list: figures 1 to maxPhase.
func parsePhases(s string) (map[int]bool, error) {
	const maxPhase = 11
	out := make(map[int]bool)
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxPhase {
			return nil, fmt.Errorf("-phases: %q is not a figure between 1 and %d", f, maxPhase)
		}
		out[n] = true
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: no figures")
	}
	return out, nil
}

// parseCounts parses a comma-separated list of positive counts for flag.
func parseCounts(flag, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive count", flag, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty", flag)
	}
	return out, nil
}
