package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	rumorcli "github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/version"
	"github.com/rumor-dev/rumor/wire"
)

// runRumor runs the command line as main does, with commands as its extra
// commands.
func runRumor(args []string, commands ...*cli.Command) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = rumorcli.Run(args, &out, &errb, commands...)
	return code, out.String(), errb.String()
}

func TestVersionCommand(t *testing.T) {
	code, out, errs := runRumor([]string{"version"}, versionCommand())
	if code != 0 || errs != "" {
		t.Fatalf("version: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"version:    " + version.Release + "\n", "go:         go1.", "wire:       3\n", "/rumor/lane/meshsub/1.2.0", "/meshsub/1.3.0",
		"sync:       /rumor/<cluster>/sync/4", "key:        /rumor/<cluster>/key/1", "commit:"} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	// --version is the same command; -o json prints an object.
	for _, args := range [][]string{{"--version", "-o", "json"}, {"-o", "json", "version"}, {"version", "-o", "json"}} {
		code, out, errs := runRumor(args, versionCommand())
		if code != 0 || errs != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errs)
		}
		var got buildReport
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		b := version.Get()
		if got.Version != version.Release || got.Commit != b.Commit || got.Go != b.Go || got.Wire != wire.Version ||
			len(got.Protocols.GossipSub) != len(gossip.Protocols()) || got.Protocols.Sync != "/rumor/<cluster>/sync/4" ||
			got.Protocols.Key != "/rumor/<cluster>/key/1" {
			t.Errorf("%v: %+v", args, got)
		}
	}
	// Usage errors: arguments, a command after --version, a bad format.
	for _, args := range [][]string{{"version", "x"}, {"--version", "status"}, {"status", "--version"}, {"version", "-o", "yaml"}} {
		if code, out, errs := runRumor(args, versionCommand()); code != rumorcli.ExitUsage || out != "" || !strings.HasPrefix(errs, "rumor: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, errs)
		}
	}
	// Help lists --version with the command, and only then.
	if _, out, _ := runRumor([]string{"--help"}, versionCommand()); !strings.Contains(out, "--version") {
		t.Errorf("help lacks --version:\n%s", out)
	}
	if code, _, _ := runRumor([]string{"--version"}); code != rumorcli.ExitUsage {
		t.Errorf("--version without a version command: exit %d, want %d", code, rumorcli.ExitUsage)
	}
}
