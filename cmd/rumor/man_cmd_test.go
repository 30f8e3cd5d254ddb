package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestManCommand(t *testing.T) {
	cmds := []*cli.Command{agentCommand(), versionCommand(), manCommand()}
	code, out, errs := runRumor([]string{"man"}, cmds...)
	if code != 0 || errs != "" {
		t.Fatalf("man: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{".TH rumor 1\n", ".SH NAME\n", "\n.SH COMMANDS\n", "\n.SH agent\n", "--data-dir", "\n.SH version\n", "Exit codes:"} {
		if !strings.Contains(out, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	// The command is hidden: neither the page nor the help lists it.
	if strings.Contains(out, "\n.SH man\n") {
		t.Error("man page lists the hidden man command")
	}
	if _, help, _ := runRumor([]string{"--help"}, cmds...); strings.Contains(help, "manual page") {
		t.Errorf("help lists the hidden man command:\n%s", help)
	}
	if code, _, errs := runRumor([]string{"man", "extra"}, cmds...); code != exitUsage || !strings.Contains(errs, "no arguments") {
		t.Errorf("man extra: exit %d, stderr %q; want %d and a message", code, errs, exitUsage)
	}
}
