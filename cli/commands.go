package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/cli/table"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/urfave/cli/v2"
)

// commands returns rumor's client commands, built afresh (urfave/cli keeps
// parse state in its flags).
func commands() []*cli.Command {
	return []*cli.Command{
		{
			Name:   "status",
			Usage:  "show the local agent's node id, addresses and counters",
			Flags:  []cli.Flag{outputFlag()},
			Action: action(false, cmdStatus),
		},
		{
			Name:   "members",
			Usage:  "list the nodes the local agent knows",
			Flags:  []cli.Flag{outputFlag()},
			Action: action(false, cmdMembers),
		},
		svcCommand(),
		blCommand(),
		taskCommand(),
		kernelCommand(),
		lockCommand(),
		kvCommand(),
		explainCommand(),
		{
			Name:      "watch",
			Usage:     "print every change to keys under a prefix (svc/, bl/<list>/, task/, kernel/, node/), or to every key if none given",
			ArgsUsage: "[prefix]",
			Description: `Prints the keys under the prefix as they stand (op "snapshot"), a "synced"
line, then one line per change until interrupted: time, operation, key,
writing node and a summary of the new value. Operations: put, delete,
refresh (only the TTL changed), expired, owner-down, owner-up, claim, renew,
release, lease:<event>. With -o json, prints one rpc.Event JSON object per
line (NDJSON), each change with its "cursor", and a keepalive line every
--keepalive. --since CURSOR resumes after a cursor of an earlier watch: it
prints exactly the changes made since, or "resync" and a fresh snapshot when
the agent no longer holds them. With no prefix (or the empty prefix "") it
watches every key.`,
			Flags:  watchFlags(),
			Action: action(true, func(ctx context.Context, k *call) error { return watch(ctx, k, k.arg(0)) }),
		},
	}
}

func svcCommand() *cli.Command {
	return &cli.Command{
		Name:  "svc",
		Usage: "register and discover service instances",
		Subcommands: []*cli.Command{
			{
				Name:      "set",
				Usage:     "register an instance of a service, owned by this node",
				ArgsUsage: "<service> <instance>",
				Description: `Writes svc/<service>/<instance>. Only this node may change or delete it; other
nodes show it as down once this node is declared dead. With --ttl the entry
expires unless set again before then.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "addr", Usage: "address clients should use, e.g. 10.0.0.1:8080"},
					&cli.StringFlag{Name: "status", Usage: "up, down, draining or your own word", Value: "up"},
					&cli.StringSliceFlag{Name: "tag", Usage: "tag as key=value (repeatable)"},
					&cli.DurationFlag{Name: "ttl", Usage: "expire unless set again within this long, e.g. 30s", DefaultText: "never"},
					outputFlag(),
				},
				Action: action(false, named(cmdSvcSet, "service", "instance")),
			},
			{
				Name:      "get",
				Usage:     "show one instance of a service",
				ArgsUsage: "<service> <instance>",
				Flags:     []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					s, err := k.client.ServiceGet(ctx, k.args[0], k.args[1])
					if err != nil {
						return err
					}
					return k.services([]rpc.Service{s}, s)
				}),
			},
			{
				Name:      "ls",
				Usage:     "list instances of a service, or of all services",
				ArgsUsage: "[service]",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "up", Usage: "only instances that are up and whose owner is alive"},
					outputFlag(),
				},
				Action: action(false, func(ctx context.Context, k *call) error {
					ss, err := k.client.ServiceList(ctx, k.arg(0), k.c.Bool("up"))
					if err != nil {
						return err
					}
					return k.services(ss, nonNil(ss))
				}),
			},
			{
				Name:      "rm",
				Usage:     "delete an instance of a service owned by this node",
				ArgsUsage: "<service> <instance>",
				Flags:     []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					return k.client.ServiceDelete(ctx, k.args[0], k.args[1])
				}),
			},
			{
				Name:      "watch",
				Usage:     "print every change to a service's instances (all services if none given)",
				ArgsUsage: "[service]",
				Description: `As "rumor watch svc/[service/]": a snapshot, a synced line, then every change,
expiry and owner-down/owner-up, each with its cursor in -o json; --since
resumes.`,
				Flags: watchFlags(),
				Action: action(true, func(ctx context.Context, k *call) error {
					prefix := "svc/"
					if s := k.arg(0); s != "" {
						prefix += s + "/"
					}
					return watch(ctx, k, prefix)
				}),
			},
		},
	}
}

func cmdSvcSet(ctx context.Context, k *call) error {
	ms, err := ttl(k)
	if err != nil {
		return err
	}
	req := rpc.ServiceSet{Addr: k.c.String("addr"), Status: k.c.String("status"), TTLMillis: ms}
	if req.Status == "" {
		return usagef(k.c, "--status must not be empty")
	}
	for _, t := range k.c.StringSlice("tag") {
		key, val, ok := strings.Cut(t, "=")
		if !ok || key == "" {
			return usagef(k.c, "bad --tag %q: want key=value", t)
		}
		if req.Tags == nil {
			req.Tags = map[string]string{}
		}
		req.Tags[key] = val
	}
	s, err := k.client.ServiceSet(ctx, k.args[0], k.args[1], req)
	if err != nil {
		return err
	}
	return k.services([]rpc.Service{s}, s)
}

func blCommand() *cli.Command {
	return &cli.Command{
		Name:  "bl",
		Usage: "manage blacklists (revoked tokens, blocked ids)",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "put an id on a list",
				ArgsUsage: "<list> <id>",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "ttl", Usage: "take the id off again after this long, e.g. 1h", DefaultText: "never"},
					&cli.StringFlag{Name: "reason", Usage: "why, for the humans"},
					outputFlag(),
				},
				Description: "The list is a name (" + rpc.NameRule + "); the id is " + rpc.BlacklistIDRule + ".",
				Action: action(false, named(func(ctx context.Context, k *call) error {
					ms, err := ttl(k)
					if err != nil {
						return err
					}
					if err := rpc.CheckBlacklistID(k.args[1]); err != nil {
						return usagef(k.c, "%v", err)
					}
					e, err := k.client.BlacklistAdd(ctx, k.args[0], k.args[1], rpc.BlacklistAdd{Reason: k.c.String("reason"), TTLMillis: ms})
					if err != nil {
						return err
					}
					return k.entries([]rpc.BlacklistEntry{e}, e)
				}, "list")),
			},
			{
				Name:      "rm",
				Usage:     "take an id off a list",
				ArgsUsage: "<list> <id>",
				Flags:     []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					return k.client.BlacklistRemove(ctx, k.args[0], k.args[1])
				}),
			},
			{
				Name:      "has",
				Usage:     "exit 0 if an id is on a list, 1 if not",
				ArgsUsage: "<list> <id>",
				Description: `Prints nothing unless -v (the entry, or that the id is absent) or -o json
(an rpc.BlacklistCheck). The exit code is the answer: 0 present, 1 absent.`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what was found"},
					outputFlag(),
				},
				Action: action(false, cmdBlHas),
			},
			{
				Name:      "ls",
				Usage:     "list the ids on a list, or every list with its number of ids if none given",
				ArgsUsage: "[list]",
				Description: `With a list, prints its ids (-o json: rpc.BlacklistEntry objects). Without,
prints every list that has an id on it now and how many (-o json:
rpc.BlacklistSummary objects); lists whose ids all expired or were removed
are left out.`,
				Flags: []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					if len(k.args) == 0 {
						ls, err := k.client.BlacklistLists(ctx)
						if err != nil {
							return err
						}
						return k.blacklists(ls, nonNil(ls))
					}
					es, err := k.client.BlacklistList(ctx, k.args[0])
					if err != nil {
						return err
					}
					return k.entries(es, nonNil(es))
				}),
			},
		},
	}
}

func cmdBlHas(ctx context.Context, k *call) error {
	e, ok, err := k.client.BlacklistHas(ctx, k.args[0], k.args[1])
	if err != nil {
		return err
	}
	switch {
	case k.json:
		if err := k.printJSON(rpc.BlacklistCheck{Present: ok, Entry: e}); err != nil {
			return err
		}
	case k.c.Bool("verbose") && ok:
		if err := k.entries([]rpc.BlacklistEntry{e}, nil); err != nil {
			return err
		}
	case k.c.Bool("verbose"):
		fmt.Fprintf(k.out, "%s is not on list %s\n", k.args[1], k.args[0])
	}
	if !ok {
		return &exitError{code: ExitError} // the answer, not a failure: no message
	}
	return nil
}

var taskStates = []string{"running", "done", "failed", "cancelled"}

func taskCommand() *cli.Command {
	return &cli.Command{
		Name:  "task",
		Usage: "record where tasks run, queue work for any worker, ask where tasks are, cancel them",
		Subcommands: append([]*cli.Command{
			{
				Name:      "assign",
				Usage:     "record a new task and its owner node (this node unless --node)",
				ArgsUsage: "<id>",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "node", Usage: "owner node id", DefaultText: "this node"},
					outputFlag(),
				},
				Action: action(false, named(func(ctx context.Context, k *call) error {
					t, err := k.client.TaskAssign(ctx, k.args[0], rpc.TaskAssign{Node: k.c.String("node")})
					if err != nil {
						return err
					}
					return k.tasks([]rpc.Task{t}, t)
				}, "task id")),
			},
			{
				Name:      "where",
				Usage:     "print the node that owns a task, and its state",
				ArgsUsage: "<id>",
				Description: `Prints "<owner node id> <state>" on one line, with the full node id, from any
node's view.`,
				Flags: []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					t, err := k.client.TaskGet(ctx, k.args[0])
					if err != nil {
						return err
					}
					if k.json {
						return k.printJSON(t)
					}
					_, err = fmt.Fprintf(k.out, "%s %s\n", table.Dash(t.Owner), table.Dash(t.State))
					return err
				}),
			},
			{
				Name:      "cancel",
				Usage:     "cancel a task from any node; its worker confirms",
				ArgsUsage: "<id>",
				Description: `A task that a worker may be running becomes cancel-requested: its worker
sees the request (on its session, or by watching task/) and sets the task
cancelled once it has stopped. Until then "task where" shows
cancel-requested. A task no worker runs (still queued, its worker gone, its
owner node dead) is cancelled at once. With --wait the command waits for the
worker's acknowledgement and exits 1 if it does not come in time.`,
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "wait", Usage: "wait this long for the worker to confirm, e.g. 30s", DefaultText: "no wait"},
					outputFlag(),
				},
				Action: action(true, func(ctx context.Context, k *call) error {
					wait := k.c.Duration("wait")
					if wait < 0 {
						return usagef(k.c, "--wait must not be negative")
					}
					t, err := k.client.TaskCancel(ctx, k.args[0])
					if err == nil && wait > 0 {
						t, err = cancelWait(ctx, k, k.args[0], wait)
					}
					if err != nil {
						return err
					}
					return k.tasks([]rpc.Task{t}, t)
				}),
			},
			{
				Name:      "state",
				Usage:     "set the state of a task this node owns",
				ArgsUsage: "<id> <" + strings.Join(taskStates, "|") + ">",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "result", Usage: "where the result is, e.g. s3://bucket/key"},
					outputFlag(),
				},
				Action: action(false, func(ctx context.Context, k *call) error {
					state := k.args[1]
					if !contains(taskStates, state) {
						return usagef(k.c, "bad task state %q: want %s", state, strings.Join(taskStates, ", "))
					}
					t, err := k.client.TaskUpdate(ctx, k.args[0], rpc.TaskUpdate{State: state, Result: k.c.String("result")})
					if err != nil {
						return err
					}
					return k.tasks([]rpc.Task{t}, t)
				}),
			},
			{
				Name:  "ls",
				Usage: "list tasks",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "state", Usage: "only tasks in this state: " + strings.Join(allTaskStates, ", ")},
					&cli.StringFlag{Name: "queue", Usage: "only tasks of this work queue"},
					&cli.StringFlag{Name: "owner", Usage: "only tasks owned by this node (full id)"},
					outputFlag(),
				},
				Action: action(false, cmdTaskList),
			},
		}, queueCommands()...),
	}
}

// allTaskStates are the states "task ls --state" accepts.
var allTaskStates = []string{"queued", "running", "cancel-requested", "done", "failed", "cancelled"}

func cmdTaskList(ctx context.Context, k *call) error {
	f := rpc.TaskFilter{State: k.c.String("state"), Queue: k.c.String("queue"), Owner: k.c.String("owner")}
	if f.State != "" && !contains(allTaskStates, f.State) {
		return usagef(k.c, "bad task state %q: want %s", f.State, strings.Join(allTaskStates, ", "))
	}
	ts, err := k.client.TaskList(ctx, f)
	if err != nil {
		return err
	}
	return k.tasks(ts, nonNil(ts))
}

func kernelCommand() *cli.Command {
	return &cli.Command{
		Name:  "kernel",
		Usage: "claim exclusive leases on resources (kernels, cron jobs, leaders)",
		Description: `A lease is granted only if no other node holds it live when the claim has
settled. It is AP, not a linearizable lock: on either side of a partition a
kernel can be granted; on heal one holder wins everywhere. The epoch is a
fencing token the resource can check.`,
		Subcommands: []*cli.Command{
			{
				Name:      "claim",
				Usage:     "claim a kernel's lease; exit 3 naming the holder if another node has it",
				ArgsUsage: "<id>",
				Description: `A one-shot claim: the lease belongs to the agent, not to this command, and
runs out after --ttl unless renewed ("kernel renew") or, with --keep, the agent
renews it every ttl/3 until "kernel release". A program that needs the kernel
while it runs should hold it with "rumor lock" (or the API's session stream):
its lease is released when it exits and runs out if it hangs or dies.
With --wait the claim waits while another claimant holds the kernel.`,
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "ttl", Usage: "lease length, e.g. 30s", DefaultText: "the agent's"},
					&cli.StringFlag{Name: "job", Usage: "what the lease is for, shown to others"},
					&cli.BoolFlag{Name: "keep", Usage: "have the agent renew the lease until it is released"},
					&cli.DurationFlag{Name: "wait", Usage: "how long to wait while another claimant holds the kernel (0: do not wait)"},
					outputFlag(),
				},
				Action: action(true, named(cmdKernelClaim, "kernel id")), // --timeout applies to it, plus --wait
			},
			{
				Name:      "renew",
				Usage:     "extend a lease this node holds",
				ArgsUsage: "<id>",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "ttl", Usage: "new lease length from now", DefaultText: "the agent's"},
					outputFlag(),
				},
				Action: action(false, func(ctx context.Context, k *call) error {
					ms, err := ttl(k)
					if err != nil {
						return err
					}
					kn, err := k.client.KernelRenew(ctx, k.args[0], rpc.KernelRenew{TTLMillis: ms})
					if err != nil {
						return err
					}
					return k.kernels([]rpc.Kernel{kn}, kn)
				}),
			},
			{
				Name:      "release",
				Usage:     "give up a lease this node holds (a one-shot claim's), or free a kernel by force",
				ArgsUsage: "<id>",
				Description: `Releases the lease a one-shot claim of this node holds. A session's lease
(rumor lock) is released by its own client. With --force, frees the kernel
whoever holds it, for a holder that is dead or stuck: the agent claims the
next epoch at once and releases it; the holder's agent reports lease:lost and
its rumor lock stops its command. The record (kernel who -o json, explain)
says who forced it, when, and which epoch.`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Usage: "free the kernel whoever holds it"},
					&cli.StringFlag{Name: "reason", Usage: "why, recorded with a forced release"},
					outputFlag(),
				},
				Action: action(false, func(ctx context.Context, k *call) error {
					if k.c.IsSet("reason") && !k.c.Bool("force") {
						return usagef(k.c, "--reason goes with --force")
					}
					kn, err := k.client.KernelRelease(ctx, k.args[0], rpc.KernelRelease{Force: k.c.Bool("force"), Reason: k.c.String("reason")})
					if err != nil {
						return err
					}
					return k.kernels([]rpc.Kernel{kn}, kn)
				}),
			},
			{
				Name:      "who",
				Usage:     "print the node holding a kernel, and whether the lease is live",
				ArgsUsage: "<id>",
				Description: `Prints "<holder node id> <live|expired|released>" on one line, with the full
node id ("-" if no node ever held it), then one line per queued waiter, in the
order they will be granted: "waiting <node id> <session> <since>".`,
				Flags: []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					kn, err := k.client.KernelGet(ctx, k.args[0])
					if err != nil {
						return err
					}
					if k.json {
						return k.printJSON(kn)
					}
					if _, err := fmt.Fprintf(k.out, "%s %s\n", table.Dash(kn.Holder), table.LeaseState(kn)); err != nil {
						return err
					}
					for _, w := range kn.Waiters {
						if _, err := fmt.Fprintf(k.out, "waiting %s %s %s\n", w.Node, w.Session, w.Since.Format(time.RFC3339Nano)); err != nil {
							return err
						}
					}
					return nil
				}),
			},
			{
				Name:      "watch",
				Usage:     "follow a kernel's changes and this agent's lease events (all kernels if none given)",
				ArgsUsage: "[kernel]",
				Description: `Prints every claim, renew and release seen for the kernel (or all kernels),
and the lease events of leases this agent holds: lease:granted, lease:renewed,
lease:released, lease:expired, lease:lost (another node won, e.g. after a
partition healed: stop using the kernel) and lease:suspect (this agent lost
contact with most of the cluster). It starts with a snapshot and a synced
line, as "rumor watch"; -o json prints NDJSON with cursors, --since resumes.`,
				Flags: watchFlags(),
				Action: action(true, func(ctx context.Context, k *call) error {
					id := k.arg(0)
					return k.client.Watch(ctx, watchRequest(k, "kernel/"+id), func(ev rpc.Event) error {
						if id != "" && ev.Key != "" && ev.Key != "kernel/"+id {
							return nil // another kernel whose id starts with this one
						}
						if k.json {
							return k.printNDJSON(ev)
						}
						return table.Event(k.out, ev)
					})
				}),
			},
			{
				Name:  "ls",
				Usage: "list kernels and their holders",
				Flags: []cli.Flag{outputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					ks, err := k.client.KernelList(ctx)
					if err != nil {
						return err
					}
					return k.kernels(ks, nonNil(ks))
				}),
			},
		},
	}
}

func cmdKernelClaim(ctx context.Context, k *call) error {
	ms, wait, err := ttlAndWait(k)
	if err != nil {
		return err
	}
	if t := k.c.Duration("timeout"); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t+wait)
		defer cancel()
	}
	res, err := k.client.KernelClaim(ctx, k.args[0], rpc.KernelClaim{TTLMillis: ms, Job: k.c.String("job"), Keep: k.c.Bool("keep"), WaitMillis: wait.Milliseconds()})
	if err != nil {
		return err
	}
	if k.json {
		if err := k.printJSON(res); err != nil {
			return err
		}
	} else if res.Granted {
		if err := k.kernels([]rpc.Kernel{res.Kernel}, nil); err != nil {
			return err
		}
	}
	if res.Granted {
		return nil
	}
	msg := fmt.Sprintf("kernel %s was not granted", k.args[0])
	if h := res.Kernel.Holder; h != "" {
		msg = fmt.Sprintf("kernel %s is held by %s (epoch %d)", k.args[0], h, res.Kernel.Epoch)
	}
	return &exitError{code: ExitDenied, msg: msg}
}

// watchFlags are the flags of the watch commands.
func watchFlags() []cli.Flag {
	return []cli.Flag{
		outputFlag(),
		&cli.StringFlag{Name: "since", Usage: "resume after `CURSOR`, the cursor of a line of an earlier watch (-o json)"},
		&cli.DurationFlag{Name: "keepalive", Usage: "interval of keepalive lines (-o json), 0 for none", Value: rpc.DefaultKeepalive},
		&cli.IntFlag{Name: "reconnect", Usage: "when the stream breaks, reconnect with the last cursor up to `N` times in a row"},
	}
}

// watchRequest is the watch of prefix the flags ask for.
func watchRequest(k *call, prefix string) rpc.WatchRequest {
	req := rpc.WatchRequest{Prefix: prefix, Since: k.c.String("since"), Keepalive: k.c.Duration("keepalive"), Reconnect: k.c.Int("reconnect")}
	if req.Keepalive == 0 {
		req.Keepalive = -1 // none
	}
	return req
}

// watch prints events under prefix until the watch ends.
func watch(ctx context.Context, k *call, prefix string) error {
	return k.client.Watch(ctx, watchRequest(k, prefix), func(ev rpc.Event) error {
		if k.json {
			return k.printNDJSON(ev)
		}
		return table.Event(k.out, ev)
	})
}

// named wraps fn, a command that creates entries named by its leading
// arguments, so that it checks them against rpc.NameRule first, before it
// asks the agent (which checks them too): what names them in the message.
func named(fn func(ctx context.Context, k *call) error, what ...string) func(ctx context.Context, k *call) error {
	return func(ctx context.Context, k *call) error {
		for i, w := range what {
			if err := rpc.CheckName(w, k.arg(i)); err != nil {
				return usagef(k.c, "%v", err)
			}
		}
		return fn(ctx, k)
	}
}

// arg returns the i-th argument, or "" if it was not given.
func (k *call) arg(i int) string {
	if i < len(k.args) {
		return k.args[i]
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
