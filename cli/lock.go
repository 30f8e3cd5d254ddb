package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/rumor-dev/rumor/cli/lockrun"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/urfave/cli/v2"
)

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "run a command while holding a kernel's lease (like flock, etcdctl lock, consul lock)",
		ArgsUsage: "<name> <command> [args...]",
		Description: `Claims the lease <name> for a session of this command (waiting up to --wait
for it), runs the command with RUMOR_LOCK_NAME, RUMOR_LOCK_EPOCH (the fencing
token: have the resource refuse a smaller one) and RUMOR_LOCK_HOLDER in its
environment, renews the lease while it runs, releases it when it exits, and
exits with its exit code. Put the command after "--" if it has flags of its own:
   rumor lock --wait 1m gpu-0 -- python train.py --epochs 3

If the lease is lost (another claim won after a partition, or a forced
release), goes suspect (this agent is cut off from most of the cluster), or
cannot be confirmed renewed, the command gets --signal, then SIGKILL after
--grace, so that it has stopped --grace before the lease's end minus the
agent's lease_margin, measured on this process's own monotonic clock from
the last renewal it saw confirmed: even a paused or dead agent cannot leave
it running as a second holder. The signals go to the command's process
group, so a shell script's children stop too. SIGINT, SIGTERM and SIGHUP sent
to rumor lock are passed on to the command.

With --once <slot> the command runs at most once per slot across the
cluster: a replica that gets the lease after a run completed (exit 0: done,
otherwise failed) prints that run and exits 0 without running it; a slot whose
runner died mid-run is run again, and its record (task once:<name>:<slot>)
says so.

Exit codes: the command's (128+n if a signal n ended it), 3 if the lease
was not granted (no --wait, or it ran out), 1 if the agent failed, 2 for a
bad command line.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "ttl", Usage: "lease length; renewed every third of it while the command runs", DefaultText: "the agent's lease_ttl"},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait while another claimant holds the lease (0: do not wait)"},
			&cli.StringFlag{Name: "job", Usage: "what the lease is for, shown to others", DefaultText: "the command"},
			&cli.StringFlag{Name: "once", Usage: "run the command once per `SLOT` across the cluster (e.g. nightly-2026-12-05)"},
			&cli.StringFlag{Name: "signal", Usage: "signal that stops the command when the lease is lost", Value: "TERM"},
			&cli.DurationFlag{Name: "grace", Usage: "how long the command has between --signal and SIGKILL", DefaultText: "5s, or a third of ttl minus lease_margin if less"},
		},
		Action: action(true, named(cmdLock, "lock name")),
	}
}

func cmdLock(ctx context.Context, k *call) error {
	ms, wait, err := ttlAndWait(k)
	if err != nil {
		return err
	}
	grace := k.c.Duration("grace")
	if k.c.IsSet("grace") && grace <= 0 {
		return usagef(k.c, "--grace must be positive, got %v", grace)
	}
	sig, err := lockrun.ParseSignal(k.c.String("signal"))
	if err != nil {
		return usagef(k.c, "--signal: %v", err)
	}
	if once := k.c.String("once"); once != "" {
		if err := rpc.CheckName("run-once slot", once); err != nil {
			return usagef(k.c, "--once: %v", err)
		}
	}
	argv := k.args[1:]
	job := k.c.String("job")
	if job == "" {
		job = strings.Join(argv, " ")
		if len(job) > 200 {
			job = job[:200]
		}
	}
	code, err := lockrun.Run(ctx, k.client, lockrun.Options{
		Name: k.args[0], Argv: argv, Signal: sig, Grace: grace, Stdout: k.out, Stderr: k.c.App.ErrWriter,
		Claim: rpc.KernelClaim{TTLMillis: ms, Job: job, WaitMillis: wait.Milliseconds(), Once: k.c.String("once")},
	})
	switch {
	case errors.Is(err, lockrun.ErrNotGranted):
		return &exitError{code: ExitDenied, msg: err.Error()}
	case errors.Is(err, lockrun.ErrBadGrace):
		return &exitError{code: ExitUsage, msg: err.Error()}
	case err != nil:
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
