package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The sample config documents the defaults: loading it must give exactly
// DefaultConfig, so the two cannot drift apart.
func TestSampleConfigIsTheDefaults(t *testing.T) {
	var c Config
	if err := c.LoadFile(filepath.Join("..", "configs", "rumor.yaml")); err != nil {
		t.Fatal(err)
	}
	// "key: []" documents an empty default list.
	for _, l := range []*[]string{&c.Bootstrap, &c.AllowPeers, &c.BLWriters} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if d := DefaultConfig(); !reflect.DeepEqual(c, d) {
		t.Fatalf("configs/rumor.yaml differs from DefaultConfig:\n file    %+v\n default %+v", c, d)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"clusterr: x\n", "clusterr"},
		{"max_skew: soon\n", "line 1"},
		{"heartbeat: -1s\n", "heartbeat"},
		{"suspect_after: 10s\ndead_after: 5s\n", "dead_after"},
		{"suspect_after: 10ms\n", "suspect_after: 10ms is too short"},
		{"probe_peers: 0\n", "probe_peers: must be at least 1"},
		{"mesh_degree: 0\n", "mesh_degree: must be from 1 to 64, got 0"},
		{"log_level: loud\n", "log_level"},
		{"batch_max_bytes: 10\n", "batch_max_bytes"},
		{"listen: []\n", "listen"},
	} {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		err := c.LoadFile(p)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
}
