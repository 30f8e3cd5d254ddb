package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// manCommand returns the hidden `rumor man` command: it prints rumor's
// manual page, rumor(1), in roff, generated from the command line itself
// (every visible command, flag and description), so that the page never
// lags behind the binary. make dist puts its output in the archives and
// the package as rumor.1.
func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the rumor(1) manual page in roff (used by make dist)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("man takes no arguments, got %q", c.Args().Slice()), exitUsage)
			}
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}
