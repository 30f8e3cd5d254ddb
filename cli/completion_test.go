package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -o nospace -F _rumor_bash_autocomplete rumor",
		"zsh":  "compdef _rumor_zsh_autocomplete rumor",
	} {
		var out, errb bytes.Buffer
		if code := Run([]string{"completion", shell}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), want) || errb.Len() != 0 {
			t.Errorf("completion %s: exit %d, stderr %q, script has %q: %v", shell, code, errb.String(), want, strings.Contains(out.String(), want))
		}
	}
	for _, args := range [][]string{{"completion", "fish"}, {"completion"}, {"completion", "bash", "zsh"}} {
		var out, errb bytes.Buffer
		if code := Run(args, &out, &errb); code != ExitUsage || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q; want %d and nothing", args, code, out.String(), ExitUsage)
		}
	}
}

// TestCompletionCandidates: what the scripts run, "<words> --generate-bash-completion",
// lists subcommands, and a command's flags after "-", even for a command
// whose arguments precede the flag. (urfave/cli reads the word before the
// request from os.Args, so the test sets it as the shell would.)
func TestCompletionCandidates(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{completionFlag}, []string{"svc", "kernel", "backup", "completion"}},
		{[]string{"svc", completionFlag}, []string{"set", "get", "ls"}},
		{[]string{"svc", "set", "web", "-", completionFlag}, []string{"--addr", "--ttl"}},
	} {
		var out, errb bytes.Buffer
		os.Args = append([]string{"rumor"}, tc.args...)
		Run(tc.args, &out, &errb)
		got := strings.Fields(out.String())
		for _, w := range tc.want {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
				t.Errorf("%v: candidates %v lack %s", tc.args, got, w)
			}
		}
	}
}
