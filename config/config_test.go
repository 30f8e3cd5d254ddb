package config

import (
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
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
	if len(c.KVWriters) == 0 {
		c.KVWriters = nil // "kv_writers: {}" documents an empty default map
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
		{"bootstrap: [/ip4/10.0.0.1/tcp/7946]\n", `bootstrap: "/ip4/10.0.0.1/tcp/7946" (from the bootstrap key or --join): does not end in /p2p/<peer id>`},
		{"bootstrap: [/dns4/rumor.example.com/tcp/7946]\n", "bootstrap"},
		{"bootstrap: [dns4/rumor.example.com]\n", "bootstrap"},
		{"mdns: maybe\n", "line 1"},
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

func TestSocketPermSettings(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		want    os.FileMode
		wantErr string // "" for a good value
	}{
		{"0600", 0o600, ""},
		{"600", 0o600, ""},
		{"0660", 0o660, ""},
		{"0640", 0o640, ""},
		{"0700", 0o700, ""},
		{"0770", 0o770, ""},
		{"0666", 0, "gives others access"},
		{"0601", 0, "gives others access"},
		{"0777", 0, "gives others access"},
		{"0460", 0, "must let the agent's user read and write"},
		{"0060", 0, "must let the agent's user read and write"},
		{"", 0, "must be an octal mode"},
		{"rw-rw----", 0, "must be an octal mode"},
		{"0680", 0, "must be an octal mode"},
		{"01660", 0, "must be an octal mode"},
		{"-0660", 0, "must be an octal mode"},
		{"0x1b0", 0, "must be an octal mode"},
	} {
		c := DefaultConfig()
		c.Socket = "/run/rumor/rumor.sock"
		c.SocketMode = tc.mode
		err := c.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("socket_mode %q: %v", tc.mode, err)
				continue
			}
			p, err := c.SocketPerm()
			if err != nil || p.Mode != tc.want || p.GID != -1 {
				t.Errorf("socket_mode %q: SocketPerm = %+v, %v; want mode %04o, gid -1", tc.mode, p, err, uint32(tc.want))
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "config: socket_mode: ") || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("socket_mode %q: err %v, want one naming socket_mode and saying %q", tc.mode, err, tc.wantErr)
		}
		if _, err := c.SocketPerm(); err == nil || !strings.Contains(err.Error(), "socket_mode") {
			t.Errorf("socket_mode %q: SocketPerm err %v, want one naming socket_mode", tc.mode, err)
		}
	}

	// Group access (write, which connecting needs) to a socket in
	// data_dir (kept 0700) is refused; group read alone gives nothing and
	// passes.
	c := DefaultConfig()
	c.SocketMode = "0660"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "config: socket_mode: ") || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("group mode with the socket in data_dir: err %v, want a socket_mode error naming data_dir", err)
	}
	c.SocketMode = "0640"
	if err := c.Validate(); err != nil {
		t.Errorf("socket_mode 0640 with the socket in data_dir: %v", err)
	}

	// Groups: by number, by name, unknown, malformed.
	c = DefaultConfig()
	c.Socket = "/run/rumor/rumor.sock"
	c.SocketMode = "0660"
	c.SocketGroup = "4242"
	if p, err := c.SocketPerm(); err != nil || p.GID != 4242 || p.Mode != 0o660 {
		t.Errorf("socket_group 4242: %+v, %v", p, err)
	}
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		c.SocketGroup = g.Name
		if p, err := c.SocketPerm(); err != nil || p.GID != os.Getgid() {
			t.Errorf("socket_group %q: %+v, %v; want gid %d", g.Name, p, err, os.Getgid())
		}
	} else {
		t.Logf("no name for gid %d (%v): the lookup by name is not tested", os.Getgid(), err)
	}
	c.SocketGroup = "no-such-group-rumor-test"
	if err := c.Validate(); err != nil {
		t.Errorf("an unknown group is for the agent's host to judge, not Validate: %v", err)
	}
	if _, err := c.SocketPerm(); err == nil || !strings.Contains(err.Error(), "config: socket_group: ") || !strings.Contains(err.Error(), `no group "no-such-group-rumor-test"`) {
		t.Errorf("unknown socket_group: err %v, want one naming socket_group and the group", err)
	}
	for _, g := range []string{"a b", "wheel:x", "-5"} {
		c.SocketGroup = g
		err := c.Validate()
		if err == nil {
			_, err = c.SocketPerm()
		}
		if err == nil || !strings.Contains(err.Error(), "socket_group") {
			t.Errorf("socket_group %q: err %v, want one naming socket_group", g, err)
		}
	}
}

func TestKVWritersValidated(t *testing.T) {
	const id = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
	for _, c := range []struct {
		writers map[string][]string
		want    string
	}{
		{map[string][]string{"config/": {id}}, "must start with '/'"},
		{map[string][]string{"/config/": {}}, "lists no node"},
		{map[string][]string{"/config/": {"bob"}}, `"bob" (under "/config/") is not a node id`},
	} {
		cfg := DefaultConfig()
		cfg.KVWriters = c.writers
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "kv_writers") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.writers, err, c.want)
		}
	}
	cfg := DefaultConfig()
	cfg.KVWriters = map[string][]string{"/config/payments/": {id}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a valid kv_writers: %v", err)
	}
}

// Join addresses by IP, by DNS name and by /dnsaddr name are all valid,
// and mdns reads as a boolean.
func TestJoinByNameAndMDNS(t *testing.T) {
	const id = "12D3KooWGzBiG8Yb4xQdbE9gV5EBK6RDxGmaZWqFbiMBDm2Cg3Yk"
	p := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "mdns: true\nbootstrap:\n" +
		"  - /ip4/10.0.0.1/tcp/7946/p2p/" + id + "\n" +
		"  - /dns4/rumor-1.example.com/tcp/7946/p2p/" + id + "\n" +
		"  - /dns6/rumor-1.example.com/udp/7946/quic-v1/p2p/" + id + "\n" +
		"  - /dnsaddr/rumor.example.com\n"
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !c.MDNS || len(c.Bootstrap) != 4 {
		t.Errorf("mdns %v, bootstrap %q", c.MDNS, c.Bootstrap)
	}
	if DefaultConfig().MDNS {
		t.Error("mDNS is on by default")
	}
}
