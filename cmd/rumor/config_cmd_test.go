package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	rumorcli "github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/config"
)

// runCLI runs the rumor command line with the offline daemon commands.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = rumorcli.Run(args, &out, &errb, configCommand(), restoreCommand())
	return code, out.String(), errb.String()
}

// TestShippedConfigsValidate loads every config file this repository ships
// (configs/ and configs/examples/) with the agent's loader and validates it.
func TestShippedConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob("../../configs/examples/*.yaml")
	files = append(files, examples...)
	if len(examples) < 3 || len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if _, err := loadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigCheckPrintsTheEffectiveConfig(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "# a comment\ncluster: prod\nmax_tags: 8\n")
	code, out, errs := runCLI("config", "check", path)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if !strings.HasPrefix(out, "# "+path+": valid") {
		t.Errorf("output starts %q", strings.SplitN(out, "\n", 2)[0])
	}
	for _, f := range config.Fields() {
		if !strings.Contains(out, "\n"+f.Key+":") {
			t.Errorf("output lacks key %s", f.Key)
		}
	}
	// What it prints is the config it loaded, and loads back unchanged.
	want, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var got config.Config
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for _, f := range config.Fields() {
		if !config.SameValue(f.Value(&got), f.Value(&want)) {
			t.Errorf("printed %s = %v, want %v", f.Key, f.Value(&got), f.Value(&want))
		}
	}
	if got.Cluster != "prod" || got.MaxTags != 8 || got.LeaseTTL != config.DefaultConfig().LeaseTTL {
		t.Errorf("printed config %+v", got)
	}
}

func TestConfigCheckNamesLinesAndExits2(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "cluster: a\nmax_tag: 3\n", []string{"line 2: field max_tag not found"}},
		{"bad type", "cluster: a\nlease_ttl: soon\n", []string{"line 2: cannot unmarshal", "soon"}},
		{"bad values", "cluster: a\nmax_tags: 0\n\nlog_level: loud\nallow_peers: [nobody]\n", []string{
			"rumor.yaml:2: max_tags: must be at least 1, got 0",
			"rumor.yaml:4: log_level: unknown log level \"loud\"",
			"rumor.yaml:5: allow_peers: \"nobody\" is not a node id",
		}},
		{"not in the file", "redial_min: 10s\n", []string{"rumor.yaml: redial_max: 5s is below redial_min 10s (the default or the environment's value: the key is not in the file)"}},
		{"pair", "suspect_after: 5s\ndead_after: 4s\n", []string{"rumor.yaml:1: suspect_after/dead_after:"}},
	} {
		path := writeConfig(t, dir, tc.body)
		code, out, errs := runCLI("config", "check", path)
		if code != 2 || out != "" {
			t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", tc.name, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errs)
			}
		}
	}
	if code, _, errs := runCLI("config", "check", filepath.Join(dir, "missing.yaml")); code != 2 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
	if code, _, _ := runCLI("config", "check"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}

func TestConfigCheckEnv(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "cluster: fromfile\n")
	t.Setenv("RUMOR_CLUSTER", "fromenv")
	if code, out, errs := runCLI("config", "check", path); code != 0 || !strings.Contains(out, "\ncluster: fromfile\n") {
		t.Errorf("without --env: exit %d, %s%s", code, out, errs)
	}
	if code, out, errs := runCLI("config", "check", "--env", path); code != 0 || !strings.Contains(out, "\ncluster: fromenv\n") {
		t.Errorf("with --env: exit %d, %s%s", code, out, errs)
	}
	// RUMOR_MDNS sets mdns; RUMOR_JOIN adds to bootstrap, and a join
	// address without an id is refused naming the key.
	t.Setenv("RUMOR_MDNS", "true")
	if code, out, errs := runCLI("config", "check", "--env", path); code != 0 || !strings.Contains(out, "\nmdns: true\n") {
		t.Errorf("RUMOR_MDNS: exit %d, %s%s", code, out, errs)
	}
	t.Setenv("RUMOR_JOIN", "/dnsaddr/rumor.example.com,/dns4/rumor-1.example.com/tcp/7946")
	if code, _, errs := runCLI("config", "check", "--env", path); code != 2 || !strings.Contains(errs, `bootstrap: "/dns4/rumor-1.example.com/tcp/7946"`) || strings.Contains(errs, "/dnsaddr/rumor.example.com") {
		t.Errorf("RUMOR_JOIN with a name without an id: exit %d, %q", code, errs)
	}
	t.Setenv("RUMOR_JOIN", "")
	t.Setenv("RUMOR_MAX_SKEW", "lots")
	if code, _, errs := runCLI("config", "check", "--env", path); code != 2 || !strings.Contains(errs, "RUMOR_MAX_SKEW") && !strings.Contains(errs, "max-skew") {
		t.Errorf("bad env value: exit %d, %q", code, errs)
	}
}

// loadConfig loads path over the defaults and validates it, as the agent does.
func loadConfig(path string) (config.Config, error) {
	cfg := config.DefaultConfig()
	if err := cfg.LoadFile(path); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// writeConfig writes a config file named rumor.yaml into dir.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "rumor.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
