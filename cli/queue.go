package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rumor-dev/rumor/rpc"
)

// queueCommands are task's work-queue subcommands.
func queueCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "submit",
			Usage:     "queue a new task on a work queue; any worker of the cluster may take it",
			ArgsUsage: "<queue>",
			Description: `Prints the task. Its id is --id, or a random one. The payload is the text of
--payload, @file for a file's bytes, or - for standard input; it is limited by
max_value_bytes (64 KiB by default, less about a quarter for its encoding).`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "id", Usage: "the task's id", DefaultText: "random"},
				&cli.StringFlag{Name: "payload", Usage: "the worker's input: text, @file or - (stdin)"},
				&cli.IntFlag{Name: "priority", Usage: "higher is taken first"},
				&cli.IntFlag{Name: "max-attempts", Usage: "takes before the task fails as a dead letter", Value: 3},
				outputFlag(),
			},
			Action: action(false, named(func(ctx context.Context, k *call) error {
				payload, err := readPayload(k.c)
				if err != nil {
					return usagef(k.c, "%v", err)
				}
				if k.c.Int("max-attempts") < 1 {
					return usagef(k.c, "--max-attempts must be at least 1")
				}
				id := k.c.String("id")
				if id == "" {
					id = rand.Text()[:16]
				} else if err := rpc.CheckName("task id", id); err != nil {
					return usagef(k.c, "--id: %v", err)
				}
				t, err := k.client.TaskSubmit(ctx, k.args[0], rpc.TaskSubmit{ID: id, Payload: payload, Priority: k.c.Int("priority"), MaxAttempts: k.c.Int("max-attempts")})
				if err != nil {
					return err
				}
				return k.tasks([]rpc.Task{t}, t)
			}, "queue")),
		},
		{
			Name:      "take",
			Usage:     "take the next task of a work queue for this host's worker; exit 4 if there is none",
			ArgsUsage: "<queue>",
			Description: `Claims the next queued task (higher priority first, then the oldest) with the
lease rule, so in a connected cluster one worker takes it. The task is this
node's for --visibility: end it with "task done" or "task fail", or extend it
with "task touch"; if none comes in time, it returns to the queue with its
attempt counted (at-least-once). -o json prints the task (id, payload, epoch,
attempt, ...); the table prints the payload alone, as bytes, for a shell worker.`,
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "wait", Usage: "wait this long for a task, e.g. 30s", DefaultText: "no wait"},
				&cli.DurationFlag{Name: "visibility", Usage: "hold the task this long unless touched", Value: 5 * time.Minute},
				outputFlag(),
			},
			Action: action(true, func(ctx context.Context, k *call) error {
				wait, vis := k.c.Duration("wait"), k.c.Duration("visibility")
				if wait < 0 || vis <= 0 {
					return usagef(k.c, "--wait must not be negative and --visibility must be positive")
				}
				res, err := k.client.TaskTake(ctx, k.args[0], rpc.TaskTake{WaitMillis: wait.Milliseconds(), VisibilityMillis: vis.Milliseconds()})
				if err != nil {
					return err
				}
				if !res.Taken {
					return cli.Exit(fmt.Sprintf("no task to take on queue %s", k.args[0]), ExitEmpty)
				}
				if k.json {
					return k.printJSON(res.Task)
				}
				_, err = k.out.Write(res.Task.Payload)
				return err
			}),
		},
		{
			Name:      "touch",
			Usage:     "extend this node's hold on a task it took",
			ArgsUsage: "<id>",
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "visibility", Usage: "hold the task this long from now", Value: 5 * time.Minute},
				outputFlag(),
			},
			Action: action(false, func(ctx context.Context, k *call) error {
				t, err := k.client.TaskTouch(ctx, k.args[0], rpc.TaskTouch{VisibilityMillis: k.c.Duration("visibility").Milliseconds()})
				if err != nil {
					return err
				}
				return k.tasks([]rpc.Task{t}, t)
			}),
		},
		finishCommand("done", "end a task this node took as done"),
		finishCommand("fail", "end a task this node took as failed"),
	}
}

// finishCommand is "task done" or "task fail".
func finishCommand(name, usage string) *cli.Command {
	state := map[string]string{"done": "done", "fail": "failed"}[name]
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "<id>",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "result", Usage: "the outcome, or where it is, e.g. s3://bucket/key"},
			outputFlag(),
		},
		Action: action(false, func(ctx context.Context, k *call) error {
			t, err := k.client.TaskUpdate(ctx, k.args[0], rpc.TaskUpdate{State: state, Result: k.c.String("result")})
			if err != nil {
				return err
			}
			return k.tasks([]rpc.Task{t}, t)
		}),
	}
}

// cancelWait waits until task id is cancelled (or ended otherwise), up to
// wait; it reports the last state seen.
func cancelWait(ctx context.Context, k *call, id string, wait time.Duration) (rpc.Task, error) {
	deadline := time.Now().Add(wait)
	for {
		t, err := k.client.TaskGet(ctx, id)
		if err != nil || t.State != "cancel-requested" && t.State != "running" {
			return t, err
		}
		if !time.Now().Before(deadline) {
			return t, cli.Exit(fmt.Sprintf("task %s is still %s after %v: its worker (node %s) has not acknowledged the cancel", id, t.State, wait, t.Owner), ExitError)
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
		}
	}
}

// readPayload reads --payload: text, @file or - for standard input.
func readPayload(c *cli.Context) ([]byte, error) {
	return readValue(c, "--payload", c.String("payload"))
}

// readValue reads a value given as text, @file or - for standard input;
// what names it in errors.
func readValue(c *cli.Context, what, p string) ([]byte, error) {
	switch {
	case p == "-":
		return io.ReadAll(c.App.Reader)
	case strings.HasPrefix(p, "@"):
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, p, errors.Unwrap(err))
		}
		return b, nil
	}
	return []byte(p), nil
}
