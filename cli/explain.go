package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/urfave/cli/v2"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "show what the local agent holds for a key and which rule made its value win",
		ArgsUsage: "<key>",
		Description: `Takes a full key: svc/<service>/<instance>, bl/<list>/<id>, task/<id>,
kernel/<id> or node/<id>. Prints the namespace's ordering rule, the verdict,
the records the agent holds (for a kernel: every lease record, each with
what the lease rule made of it) and, for other keys, recent writes this
agent saw lose to the winner and why (a bounded memory, empty after the
agent restarts).`,
		Flags:  []cli.Flag{outputFlag()},
		Action: action(false, cmdExplain),
	}
}

func cmdExplain(ctx context.Context, k *call) error {
	x, err := k.client.Explain(ctx, k.args[0])
	if err != nil {
		return err
	}
	if k.json {
		return k.printJSON(x)
	}
	fmt.Fprintf(k.out, "key:      %s\nrule:     %s\nverdict:  %s\n\n", x.Key, x.Rule, x.Verdict)
	if err := explainTable(k, "HOLDS", x.Records); err != nil {
		return err
	}
	if len(x.Superseded) > 0 {
		fmt.Fprintln(k.out)
		return explainTable(k, "SUPERSEDED", x.Superseded)
	}
	return nil
}

func explainTable(k *call, title string, rs []rpc.ExplainedRecord) error {
	tw := newTable(k.out)
	row(tw, title, "NODE", "STAMP", "EPOCH", "STATE", "WHY")
	for _, r := range rs {
		epoch := "-"
		if r.Epoch != 0 {
			epoch = strconv.FormatUint(r.Epoch, 10)
		}
		row(tw, r.Op, short(r.Node), r.Stamp, epoch, dash(r.Task), r.Why)
	}
	return tw.Flush()
}
