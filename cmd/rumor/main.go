// Command rumor is the rumor agent and its command-line client.
package main

import (
	"os"

	"github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/daemon"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, daemon.Command(), daemon.IDCommand(), daemon.KeygenCommand(),
		daemon.ConfigCommand(), daemon.RestoreCommand()))
}
