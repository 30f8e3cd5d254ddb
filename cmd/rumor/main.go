// Command rumor is the rumor agent and its command-line client.
package main

import (
	"os"

	"github.com/rumor-dev/rumor/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, agentCommand(), idCommand(), keygenCommand(),
		configCommand(), restoreCommand(), versionCommand(), manCommand()))
}
