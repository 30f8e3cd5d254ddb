package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	rumorcli "github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/rpc"
)

// exitUsage is the command line's exit code for a usage error.
const exitUsage = 2

// idCommand returns the `rumor id` command: it prints this agent's node id
// from the identity key in the data dir, without an agent running, or, given
// --socket or --api, the id of the agent there.
func idCommand() *cli.Command {
	d := config.DefaultConfig()
	return &cli.Command{
		Name:  "id",
		Usage: "print this agent's node id (from the identity key in the data dir; no agent needed), or with --socket or --api the running agent's",
		Description: "Reads <data-dir>/identity.key, as `rumor agent` would with the same --data-dir, RUMOR_DATA_DIR\n" +
			"or --config, and prints the node id: the value to list in other agents' allow_peers or bl_writers.\n" +
			"Given --socket or --api (or RUMOR_SOCKET or RUMOR_API), it asks the agent there instead (as\n" +
			"`rumor status` does), which must be running; giving both a data dir and an agent is a usage error.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"RUMOR_CONFIG"}, Usage: "YAML config file (for its data_dir)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RUMOR_DATA_DIR"}, Usage: "data directory", DefaultText: d.DataDir},
		},
		Action: runID,
	}
}

// keygenCommand returns the offline `rumor keygen` command: it writes a new
// identity key, or with --psk a private-network key, to a new file.
func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new identity key (and print its node id), or with --psk a private-network key",
		UsageText: "rumor keygen [--psk] --out FILE",
		Description: "Without --psk, writes a new node identity key; put it at <data-dir>/identity.key before the\n" +
			"agent's first start to know its node id in advance (for allow_peers). With --psk, writes a libp2p\n" +
			"private-network key (/key/swarm/psk/1.0.0/, base16) to share with every agent as psk_file.\n" +
			"The file is created with mode 0600; an existing file is never overwritten.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "file to create (must not exist)"},
			&cli.BoolFlag{Name: "psk", Usage: "write a private-network key instead of an identity key"},
		},
		Action: runKeygen,
	}
}

func runID(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("id takes no arguments, got %q", c.Args().Slice()), exitUsage)
	}
	agentFlag, keyFlag := firstSet(c, "socket", "api"), firstSet(c, "data-dir", "config")
	switch {
	case agentFlag != "" && keyFlag != "":
		return cli.Exit(fmt.Sprintf("id asks the agent on --%s or reads the key in --%s, not both (RUMOR_* variables count as flags)",
			agentFlag, keyFlag), exitUsage)
	case agentFlag != "":
		return rumorcli.WithClient(c, func(ctx context.Context, client *rpc.Client) error {
			st, err := client.Status(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, st.Node)
			return err
		})
	}
	cfg := config.DefaultConfig()
	if p := c.String("config"); p != "" {
		if err := cfg.LoadFile(p); err != nil {
			return err
		}
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir")
	}
	id, err := identity.NodeID(cfg.DataDir)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, id)
	return err
}

// firstSet returns the first of names that is set to a value that is not
// empty, by a flag or its environment variable, or "" if none is.
func firstSet(c *cli.Context, names ...string) string {
	for _, n := range names {
		if c.IsSet(n) && c.String(n) != "" {
			return n
		}
	}
	return ""
}

func runKeygen(c *cli.Context) error {
	out := c.String("out")
	switch {
	case c.NArg() > 0:
		return cli.Exit(fmt.Sprintf("keygen takes no arguments, got %q (did you mean --out %s?)", c.Args().Slice(), c.Args().First()), exitUsage)
	case out == "":
		return cli.Exit("keygen needs --out FILE (keys are not printed)", exitUsage)
	}
	if c.Bool("psk") {
		if err := writeNewFile(out, identity.NewPSKFile()); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.App.Writer, "wrote a private-network key to %s: give every agent a copy as psk_file\n", out)
		return err
	}
	k, b, err := identity.Generate()
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return err
	}
	if err := writeNewFile(out, b); err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, id)
	return err
}

// writeNewFile creates path with mode 0600 and writes b, refusing to
// replace an existing file; on a failed write it removes what it created.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: refusing to overwrite a key (move it away first)", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}
