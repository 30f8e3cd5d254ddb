package cli

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/rumor-dev/rumor/cli/table"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/urfave/cli/v2"
)

func kvOutputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output format: table, json or raw (values alone)", Value: "table"}
}

func ifVersionFlag() cli.Flag {
	return &cli.Uint64Flag{Name: "if-version", Usage: "write only if this agent's version of the key is `V` (0: the key must not exist)"}
}

func kvCommand() *cli.Command {
	return &cli.Command{
		Name:  "kv",
		Usage: "configuration pushed to every host: hierarchical keys like /config/app/env/name",
		Description: `Keys are paths: a '/' then 1 to 32 segments separated by '/', each 1 to 200
bytes of anything but '/', NUL or newline. Values are UTF-8 text of at most
max_value_bytes (64 KiB by default). The last write wins, by hybrid logical
clock. Every write carries a version, one more than the writer's version of
the key; --if-version makes a write conditional on this agent's version.
Two conditional writes on the two sides of a partition can both succeed:
the later one wins when the sides meet, and the other shows as a "conflict"
in kv watch, kv history and rumor explain kv<key>. kv_writers in the
config restricts who may write under a prefix.`,
		Subcommands: []*cli.Command{
			{
				Name:      "put",
				Usage:     "write a key: the value as text, @file, or - for standard input",
				ArgsUsage: "<key> <value>",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "ttl", Usage: "delete the key after this long unless written again, e.g. 10m", DefaultText: "never"},
					ifVersionFlag(),
					kvOutputFlag(),
				},
				Action: action(false, cmdKVPut),
			},
			{
				Name:      "get",
				Usage:     "print a key's value, version and writer (exit 1 if absent)",
				ArgsUsage: "<key>",
				Flags:     []cli.Flag{kvOutputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					e, err := k.client.KVGet(ctx, k.args[0])
					if err != nil {
						return err
					}
					return k.kv([]rpc.KVEntry{e}, e, false)
				}),
			},
			{
				Name:      "ls",
				Usage:     "list the keys under a prefix (all keys without one)",
				ArgsUsage: "[prefix]",
				Flags:     []cli.Flag{kvOutputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					es, err := k.client.KVList(ctx, k.arg(0))
					if err != nil {
						return err
					}
					return k.kv(es, nonNil(es), false)
				}),
			},
			{
				Name:      "rm",
				Usage:     "delete a key",
				ArgsUsage: "<key>",
				Flags:     []cli.Flag{ifVersionFlag(), kvOutputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					e, err := k.client.KVDelete(ctx, k.args[0], ifVersion(k))
					if err != nil || !k.json {
						return err
					}
					return k.printJSON(e)
				}),
			},
			{
				Name:      "history",
				Usage:     "show the recent writes to a key this agent kept, newest first",
				ArgsUsage: "<key>",
				Description: `Shows up to kv_history writes (5 by default) that this agent saw: the
current one, those it replaced, and writes that lost to a concurrent one
(CONFLICT). To restore an old value: rumor kv put <key> "$(rumor kv history
<key> -o json | jq -r '.[N].value')". The history lives in the agent's
memory: after a restart it starts at the current value.`,
				Flags: []cli.Flag{kvOutputFlag()},
				Action: action(false, func(ctx context.Context, k *call) error {
					es, err := k.client.KVHistory(ctx, k.args[0])
					if err != nil {
						return err
					}
					return k.kv(es, es, true)
				}),
			},
			{
				Name:      "watch",
				Usage:     "print every change to the keys under a prefix (all keys without one)",
				ArgsUsage: "[prefix]",
				Description: `As rumor watch kv<prefix>: a snapshot, a synced line, then put, delete,
refresh, expired and conflict lines. A conflict line names a write that lost
to a concurrent one whose writer never saw it.`,
				Flags: watchFlags(),
				Action: action(true, func(ctx context.Context, k *call) error {
					return watch(ctx, k, "kv"+k.arg(0))
				}),
			},
		},
	}
}

func cmdKVPut(ctx context.Context, k *call) error {
	v, err := readValue(k.c, "value", k.args[1])
	if err != nil {
		return err
	}
	if !utf8.Valid(v) {
		return usagef(k.c, "the value is not UTF-8 text: encode binary values first (base64)")
	}
	ms, err := ttl(k)
	if err != nil {
		return err
	}
	e, err := k.client.KVPut(ctx, k.args[0], rpc.KVPut{Value: string(v), TTLMillis: ms, IfVersion: ifVersion(k)})
	if err != nil {
		return err
	}
	return k.kv([]rpc.KVEntry{e}, e, false)
}

// ifVersion is --if-version, nil if it was not given.
func ifVersion(k *call) *uint64 {
	if !k.c.IsSet("if-version") {
		return nil
	}
	v := k.c.Uint64("if-version")
	return &v
}

// kv prints rows as a table (with each write's marks for a history), v as
// JSON, or with -o raw the values alone, each as written.
func (k *call) kv(rows []rpc.KVEntry, v any, history bool) error {
	switch {
	case k.json:
		return k.printJSON(v)
	case k.raw:
		for _, e := range rows {
			if _, err := fmt.Fprint(k.out, e.Value); err != nil {
				return err
			}
		}
		return nil
	}
	return table.KV(k.out, rows, k.clock(), history)
}
