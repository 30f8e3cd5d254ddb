package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzLoadConfig loads arbitrary YAML over the defaults. It must never
// panic; every error must be a "config: " error; and a config that loads
// and validates must survive a round trip: marshalled back to YAML and
// loaded again over the defaults, it validates and marshals to the same
// YAML (a fixed point: the file form says everything the config holds).
func FuzzLoadConfig(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("..", "configs", "rumor.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte("cluster: prod\nlisten: [/ip4/0.0.0.0/tcp/7946]\nmax_skew: 500ms\n"))
	f.Add([]byte("cluster: a b\nmax_tags: 0\nrequest_timeout: -1s\n"))
	f.Add([]byte("api_listen: 0.0.0.0:7070\napi_token_file: /etc/rumor/token\n"))
	f.Add([]byte("bogus_key: 1\n"))
	f.Add([]byte("max_skew: 1d\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"))
	f.Add([]byte("---\ncluster: one\n---\ncluster: two\n"))
	f.Add([]byte("listen: {a: 1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := DefaultConfig()
		if err := c.LoadYAML(b, "fuzz.yaml"); err != nil {
			if !strings.HasPrefix(err.Error(), "config: fuzz.yaml: ") {
				t.Fatalf("load error without the config prefix and file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: ") {
					t.Fatalf("validation error line without the config prefix: %q", line)
				}
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		back := DefaultConfig()
		if err := back.LoadYAML(out, "round-trip"); err != nil {
			t.Fatalf("reload:\n%s\n%v", out, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("reloaded config does not validate:\n%s\n%v", out, err)
		}
		again, err := yaml.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(out) {
			t.Fatalf("round trip changed the config:\n%s\nbecame\n%s", out, again)
		}
	})
}
