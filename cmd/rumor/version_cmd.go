package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/rumor-dev/rumor/antientropy"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/version"
	"github.com/rumor-dev/rumor/wire"
)

// clusterPlaceholder stands for the cluster name in the protocol ids
// that carry it.
const clusterPlaceholder = "<cluster>"

// versionCommand returns the offline `rumor version` command (also
// `rumor --version`): this binary's build and the protocols it speaks.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print this binary's version, commit, Go release and protocol versions (no agent needed)",
		Description: "Prints the release, the commit the binary was built from (\"unknown\" if it was built outside a\n" +
			"git checkout without make), the Go release that built it, the wire envelope version, and the\n" +
			"libp2p protocol ids it speaks: GossipSub's, anti-entropy's and the key exchange's (the last two\n" +
			"carry the cluster name). A running agent's version and commit are in `rumor status`, and every\n" +
			"member's version in `rumor members`.",
		Action: runVersion,
	}
}

// buildReport is what `rumor version` prints.
type buildReport struct {
	version.Info
	// Wire is the envelope version of gossip and anti-entropy messages.
	Wire      int           `json:"wire"`
	Protocols protocolsInfo `json:"protocols"`
}

// protocolsInfo lists the libp2p protocol ids an agent speaks.
type protocolsInfo struct {
	GossipSub []string `json:"gossipsub"`
	Sync      string   `json:"sync"`
	Key       string   `json:"key"`
}

func newBuildReport() buildReport {
	var gs []string
	for _, p := range gossip.Protocols() {
		gs = append(gs, string(p))
	}
	return buildReport{
		Info: version.Get(),
		Wire: wire.Version,
		Protocols: protocolsInfo{
			GossipSub: gs,
			Sync:      antientropy.Protocol(clusterPlaceholder),
			Key:       antientropy.KeyProtocol(clusterPlaceholder),
		},
	}
}

func runVersion(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("version takes no arguments, got %q", c.Args().Slice()), exitUsage)
	}
	format := c.String("output")
	if format == "" {
		format = "table"
	}
	r := newBuildReport()
	switch format {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetEscapeHTML(false) // "<cluster>" as it is
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "table":
	default:
		return cli.Exit(fmt.Sprintf("bad output format %q: want table or json", format), exitUsage)
	}
	commit := r.Commit
	switch {
	case commit == "":
		commit = "unknown"
	case r.Modified:
		commit += " (modified)"
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"version:", r.Version},
		{"commit:", commit},
		{"go:", r.Go},
		{"wire:", fmt.Sprint(r.Wire)},
		{"gossipsub:", strings.Join(r.Protocols.GossipSub, " ")},
		{"sync:", r.Protocols.Sync},
		{"key:", r.Protocols.Key},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
