package cli

import (
	"context"
	"fmt"

	"github.com/rumor-dev/rumor/cli/table"
	"github.com/urfave/cli/v2"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "show what the local agent holds for a key and which rule made its value win",
		ArgsUsage: "<key>",
		Description: `Takes a full key: svc/<service>/<instance>, bl/<list>/<id>, task/<id>,
kernel/<id>, node/<id> or kv/<path> (kv/config/app/env/name). Prints the namespace's ordering rule, the verdict,
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
	if err := table.Explained(k.out, "HOLDS", x.Records); err != nil {
		return err
	}
	if len(x.Superseded) > 0 {
		fmt.Fprintln(k.out)
		return table.Explained(k.out, "SUPERSEDED", x.Superseded)
	}
	return nil
}
