// Package config is the agent's configuration: the Config type with its
// defaults, the YAML loader (unknown keys are errors) and validation that
// names the bad key. Precedence is applied by the command that builds it:
// command-line flags > RUMOR_* environment variables > config file >
// DefaultConfig.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
	"gopkg.in/yaml.v3"

	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/gossip/redial"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

// Config is the agent's configuration. Precedence: command-line flags >
// RUMOR_* environment variables > config file > DefaultConfig.
type Config struct {
	// Cluster names the cluster; agents only talk to agents of the same cluster.
	Cluster string `yaml:"cluster"`
	// DataDir holds the identity key, the socket (by default) and, later, state.
	DataDir string `yaml:"data_dir"`
	// Listen is the list of libp2p listen multiaddrs (TCP and/or QUIC).
	Listen []string `yaml:"listen"`
	// Bootstrap lists peers to join, as multiaddrs ending in /p2p/<peer
	// id>. The host may be a DNS name (/dns4, /dns6, /dns), resolved again
	// at every redial; a bare /dnsaddr/<name> lists peers, ids included, in
	// its TXT records (see redial.CheckJoin).
	Bootstrap []string `yaml:"bootstrap"`
	// MDNS finds peers of the same cluster on the local network by
	// multicast DNS (off by default). Peers that allow_peers refuses are
	// ignored.
	MDNS bool `yaml:"mdns"`
	// Socket is the local API's Unix socket; "" means <data_dir>/rumor.sock.
	Socket string `yaml:"socket"`
	// SocketGroup is the socket's group, a name or a numeric gid; "" is
	// the agent's primary group.
	SocketGroup string `yaml:"socket_group"`
	// SocketMode is the socket's mode, in octal ("0660" lets SocketGroup
	// use the local API). Only owner and group bits are allowed.
	SocketMode string `yaml:"socket_mode"`
	// Region is a free-form tag shown in `rumor members`.
	Region string `yaml:"region"`

	// MaxSkew is how far ahead of our clock a remote stamp may be.
	MaxSkew time.Duration `yaml:"max_skew"`
	// Heartbeat is the failure detector's probe period: every heartbeat
	// the agent pings the next probe_peers of its connected peers.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// ProbePeers is how many peers the agent pings per heartbeat, and how
	// many others it asks to ping one that does not answer. What each
	// agent sends and receives for membership depends on it, not on the
	// cluster's size.
	ProbePeers int `yaml:"probe_peers"`
	// AntiEntropy is how often the agent reconciles its whole state with
	// one random peer (it also does so with every newly connected peer).
	AntiEntropy time.Duration `yaml:"anti_entropy_interval"`
	// RedialMin and RedialMax bound the backoff with which the agent
	// redials a known peer it lost (after a partition heals or the peer
	// restarts, this is what reconnects).
	RedialMin time.Duration `yaml:"redial_min"`
	RedialMax time.Duration `yaml:"redial_max"`
	// MaxPeers bounds the peers the agent dials on its own (0: every known
	// node, a full mesh): it keeps connected the max_peers known nodes that
	// rank first by a hash of both ids, dials more while fewer are
	// connected, and lets its other dials go; GossipSub spans the random
	// graph that results. Peers that dial in are always kept.
	MaxPeers int `yaml:"max_peers"`
	// MeshDegree is GossipSub's mesh degree: how many mesh peers each node
	// forwards a message to (a publisher sends its own to every connected
	// peer). Higher reaches a large cluster in fewer hops; lower sends a
	// small one fewer duplicate copies.
	MeshDegree int `yaml:"mesh_degree"`
	// TombstoneHorizon is how long deletes and expired entries are kept
	// before they are collected. An agent that was away longer than this
	// resets its state from peers instead of merging.
	TombstoneHorizon time.Duration `yaml:"tombstone_horizon"`
	// ResetState moves the state file aside at start (it is kept, never
	// deleted) and resyncs from peers: the recovery for a corrupt file.
	ResetState bool `yaml:"-"`
	// SuspectAfter bounds a probe: a peer that answers neither the
	// agent's ping nor the pings of the probe_peers it asks to reach it
	// within suspect_after is accused, and suspect everywhere. DeadAfter
	// is how long a node accused by one peer has to refute before it is
	// dead (its services then show as down); more accusers shorten it, to
	// half of it with four.
	SuspectAfter time.Duration `yaml:"suspect_after"`
	DeadAfter    time.Duration `yaml:"dead_after"`
	// SelfFence releases this agent's leases as soon as it loses contact
	// with more than half of the nodes it saw alive (default: only stop
	// renewing and emit "suspect", so they expire).
	SelfFence bool `yaml:"self_fence"`
	// LeaseTTL is the default kernel lease TTL.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// LeaseMargin is how long before a lease's end, on its own monotonic
	// clock, a session's client stops using the kernel (rumor lock
	// signals its command by then). A TTL below the settle bound (settle,
	// or settle_max when settle is derived) plus this margin is refused:
	// it could be granted with no time left to use it.
	LeaseMargin time.Duration `yaml:"lease_margin"`
	// Settle fixes the kernel claim settle window; 0 derives it from the
	// measured gossip delay (3 x p99, within SettleMin..SettleMax).
	Settle    time.Duration `yaml:"settle"`
	SettleMin time.Duration `yaml:"settle_min"`
	SettleMax time.Duration `yaml:"settle_max"`

	// MaxMessageBytes bounds one gossip message.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// BatchMaxDeltas and BatchMaxBytes bound one published batch.
	BatchMaxDeltas int `yaml:"batch_max_deltas"`
	BatchMaxBytes  int `yaml:"batch_max_bytes"`

	// MaxKeyBytes, MaxValueBytes and MaxTags bound one entry: its key,
	// its value (encoded) and the tags of a service instance. Writes over
	// them are refused by the API; deltas over them are rejected by the
	// gossip validator.
	MaxKeyBytes   int `yaml:"max_key_bytes"`
	MaxValueBytes int `yaml:"max_value_bytes"`
	MaxTags       int `yaml:"max_tags"`
	// MaxDeltasPerMessage bounds the deltas in one gossip message.
	MaxDeltasPerMessage int `yaml:"max_deltas_per_message"`
	// MaxWatchers bounds the open watch streams of the local API.
	MaxWatchers int `yaml:"max_watchers"`
	// WatchHistory is how many recent events the agent keeps so that a
	// watch can resume with --since (all prefixes counted); a watch whose
	// cursor is older, or whose reader falls further behind, gets a
	// resync and a fresh snapshot.
	WatchHistory int `yaml:"watch_history"`
	// MaxRequestBytes bounds one local API request body.
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// RequestTimeout bounds one local API request (watches excepted).
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// AllowPeers, if not empty, is the list of peer ids (node ids) that may
	// connect; every other peer is refused at the handshake. Empty means an
	// open cluster (logged as a warning at start).
	AllowPeers []string `yaml:"allow_peers"`
	// PSKFile names a libp2p private-network key file (32-byte key); only
	// peers with the same key can connect. pnet covers TCP only, so it
	// cannot be combined with a QUIC listen address.
	PSKFile string `yaml:"psk_file"`
	// BLWriters, if not empty, is the list of node ids allowed to write
	// blacklists; bl deltas from other nodes are rejected.
	BLWriters []string `yaml:"bl_writers"`
	// KVWriters limits who may write kv paths: for each path prefix (such
	// as /config/payments/), the node ids allowed to write under it. The
	// longest prefix that matches a path decides; a path that no prefix
	// matches may be written by any member. Writes by other nodes are
	// rejected by every agent, like bl_writers.
	KVWriters map[string][]string `yaml:"kv_writers"`
	// KVHistory is how many recent writes per kv key the agent keeps in
	// memory for `rumor kv history` (the current value included).
	KVHistory int `yaml:"kv_history"`

	// APIListen is an optional loopback TCP address (host:port) for the
	// local API, served only with a bearer token read from APITokenFile.
	APIListen    string `yaml:"api_listen"`
	APITokenFile string `yaml:"api_token_file"`

	// MetricsAddr serves Prometheus metrics at /metrics and the status
	// page at /; empty turns it off.
	MetricsAddr string `yaml:"metrics_addr"`

	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
}

// DefaultConfig is a single local agent: data in ./data, listening on
// 127.0.0.1 only.
func DefaultConfig() Config {
	return Config{
		Cluster:             "default",
		DataDir:             "./data",
		SocketMode:          "0600",
		Listen:              []string{"/ip4/127.0.0.1/tcp/7946", "/ip4/127.0.0.1/udp/7946/quic-v1"},
		MaxSkew:             2 * time.Second,
		Heartbeat:           time.Second,
		AntiEntropy:         10 * time.Second,
		TombstoneHorizon:    24 * time.Hour,
		RedialMin:           500 * time.Millisecond,
		RedialMax:           5 * time.Second,
		MaxPeers:            32,
		MeshDegree:          gossip.DefaultMeshDegree,
		ProbePeers:          3,
		SuspectAfter:        1500 * time.Millisecond,
		DeadAfter:           4 * time.Second,
		LeaseTTL:            30 * time.Second,
		LeaseMargin:         500 * time.Millisecond,
		SettleMin:           50 * time.Millisecond,
		SettleMax:           2 * time.Second,
		MaxMessageBytes:     1 << 20,
		BatchMaxDeltas:      256,
		BatchMaxBytes:       64 << 10,
		MaxKeyBytes:         512,
		MaxValueBytes:       64 << 10,
		MaxTags:             64,
		MaxDeltasPerMessage: 4096,
		MaxWatchers:         256,
		WatchHistory:        4096,
		KVHistory:           5,
		MaxRequestBytes:     1 << 20,
		RequestTimeout:      30 * time.Second,
		MetricsAddr:         "127.0.0.1:9464",
		LogLevel:            "info",
		LogFormat:           "text",
	}
}

// LocalConfig is DefaultConfig for tests: a fresh data dir, random ports
// on 127.0.0.1 (TCP only) and fast timings.
func LocalConfig(dataDir string) Config {
	c := DefaultConfig()
	c.DataDir = dataDir
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.LogLevel = "warn"
	c.MetricsAddr = ""
	return c
}

// SocketPath returns the effective Unix socket path.
func (c Config) SocketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	return filepath.Join(c.DataDir, "rumor.sock")
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Cluster == "" || strings.ContainsAny(c.Cluster, "/ \t\n") {
		bad("cluster", "must be a non-empty word without '/' or spaces, got %q", c.Cluster)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if mode, err := ParseSocketMode(c.SocketMode); err != nil {
		bad("socket_mode", "%v", err)
	} else if mode&0o020 != 0 && c.DataDir != "" && filepath.Clean(filepath.Dir(c.SocketPath())) == filepath.Clean(c.DataDir) {
		bad("socket_mode", "%s gives the group access, but the socket is in data_dir, which the agent keeps 0700 (it holds the identity key); set socket to a path outside it, such as /run/rumor/rumor.sock", c.SocketMode)
	}
	if strings.ContainsAny(c.SocketGroup, ": \t\n") {
		bad("socket_group", "must be a group name or a numeric gid, got %q", c.SocketGroup)
	}
	if len(c.Listen) == 0 {
		bad("listen", "needs at least one multiaddr")
	}
	for _, s := range c.Bootstrap {
		if err := redial.CheckJoin(s); err != nil {
			bad("bootstrap", "%q (from the bootstrap key or --join): %v", s, err)
		}
	}
	for name, d := range map[string]time.Duration{"max_skew": c.MaxSkew, "heartbeat": c.Heartbeat, "anti_entropy_interval": c.AntiEntropy, "tombstone_horizon": c.TombstoneHorizon, "redial_min": c.RedialMin, "redial_max": c.RedialMax, "lease_ttl": c.LeaseTTL, "settle_min": c.SettleMin, "settle_max": c.SettleMax} {
		if d <= 0 {
			bad(name, "must be positive, got %v", d)
		}
	}
	if err := c.Membership().Validate(); err != nil {
		errs = append(errs, &FieldError{Field: "suspect_after/dead_after", Msg: err.Error()})
	} else if c.SuspectAfter < 30*time.Millisecond {
		bad("suspect_after", "%v is too short for a ping and a ping through another peer (at least 30ms)", c.SuspectAfter)
	}
	if c.ProbePeers < 1 {
		bad("probe_peers", "must be at least 1, got %d", c.ProbePeers)
	}
	if c.Settle < 0 {
		bad("settle", "must not be negative, got %v", c.Settle)
	}
	if c.LeaseMargin < 0 {
		bad("lease_margin", "must not be negative, got %v", c.LeaseMargin)
	} else if floor := c.MinLeaseTTL(); c.LeaseTTL > 0 && c.LeaseTTL < floor {
		bad("lease_ttl", "%v is below the minimum lease TTL %v (settle bound %v + lease_margin %v)", c.LeaseTTL, floor, c.SettleBound(), c.LeaseMargin)
	}
	if c.MaxPeers < 0 {
		bad("max_peers", "must not be negative (0: every known node), got %d", c.MaxPeers)
	}
	if c.MeshDegree < 1 || c.MeshDegree > 64 {
		bad("mesh_degree", "must be from 1 to 64, got %d", c.MeshDegree)
	}
	if c.RedialMax < c.RedialMin {
		bad("redial_max", "%v is below redial_min %v", c.RedialMax, c.RedialMin)
	}
	if c.SettleMax < c.SettleMin {
		bad("settle_max", "%v is below settle_min %v", c.SettleMax, c.SettleMin)
	}
	if c.MaxMessageBytes < 4096 {
		bad("max_message_bytes", "must be at least 4096, got %d", c.MaxMessageBytes)
	}
	if c.BatchMaxDeltas < 1 {
		bad("batch_max_deltas", "must be at least 1, got %d", c.BatchMaxDeltas)
	}
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > c.MaxMessageBytes {
		bad("batch_max_bytes", "must be between 1024 and max_message_bytes (%d), got %d", c.MaxMessageBytes, c.BatchMaxBytes)
	}
	for name, v := range map[string]int{"max_key_bytes": c.MaxKeyBytes, "max_value_bytes": c.MaxValueBytes, "max_tags": c.MaxTags, "max_deltas_per_message": c.MaxDeltasPerMessage, "max_watchers": c.MaxWatchers, "watch_history": c.WatchHistory, "kv_history": c.KVHistory, "max_request_bytes": c.MaxRequestBytes} {
		if v < 1 {
			bad(name, "must be at least 1, got %d", v)
		}
	}
	if c.BatchMaxDeltas > c.MaxDeltasPerMessage && c.MaxDeltasPerMessage >= 1 {
		bad("batch_max_deltas", "%d is over max_deltas_per_message %d: peers would reject this agent's batches", c.BatchMaxDeltas, c.MaxDeltasPerMessage)
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout", "must be positive, got %v", c.RequestTimeout)
	}
	for field, ids := range map[string][]string{"allow_peers": c.AllowPeers, "bl_writers": c.BLWriters} {
		for _, id := range ids {
			if _, err := peer.Decode(id); err != nil {
				bad(field, "%q is not a node id (as `rumor id` prints it): %v", id, err)
			}
		}
	}
	for prefix, ids := range c.KVWriters {
		if !strings.HasPrefix(prefix, "/") {
			bad("kv_writers", "prefix %q must start with '/' (like /config/payments/)", prefix)
		}
		if len(ids) == 0 {
			bad("kv_writers", "prefix %q lists no node: list the node ids that may write under it", prefix)
		}
		for _, id := range ids {
			if _, err := peer.Decode(id); err != nil {
				bad("kv_writers", "%q (under %q) is not a node id (as `rumor id` prints it): %v", id, prefix, err)
			}
		}
	}
	if c.PSKFile != "" {
		for _, l := range c.Listen {
			if m, err := ma.NewMultiaddr(l); err == nil && gossip.IsQUIC(m) {
				bad("psk_file", "cannot be used with the QUIC listen address %s: libp2p's private network (pnet) covers TCP only, so QUIC peers would join without the key; listen on TCP only", l)
			}
		}
	}
	if (c.APIListen == "") != (c.APITokenFile == "") {
		bad("api_listen", "api_listen and api_token_file go together (the TCP API is served only with a bearer token)")
	}
	if c.APIListen != "" {
		if err := rpc.CheckLoopback(c.APIListen); err != nil {
			bad("api_listen", "%v", err)
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "must be text or json, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// ParseSocketMode parses socket_mode: an octal mode of owner and group bits
// only, such as "0600" or "0660" (the leading 0 is optional).
func ParseSocketMode(s string) (fs.FileMode, error) {
	if s == "" || len(s) > 4 || strings.Trim(s, "01234567") != "" {
		return 0, fmt.Errorf("must be an octal mode such as \"0600\" or \"0660\", got %q", s)
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("must be an octal mode such as \"0600\" or \"0660\", got %q", s)
	}
	if v&0o007 != 0 {
		return 0, fmt.Errorf("%q gives others access to the local API (the last digit must be 0): the socket must not be open to every user; use socket_group and a mode such as \"0660\"", s)
	}
	if v&0o600 != 0o600 {
		return 0, fmt.Errorf("%q must let the agent's user read and write (the first digit must be 6 or 7)", s)
	}
	return fs.FileMode(v), nil
}

// SocketPerm returns the socket's mode and group, looking the group up in
// the host's group database: an unknown group is an error that names
// socket_group.
func (c Config) SocketPerm() (rpc.Perm, error) {
	mode, err := ParseSocketMode(c.SocketMode)
	if err != nil {
		return rpc.Perm{}, &FieldError{Field: "socket_mode", Msg: err.Error()}
	}
	p := rpc.Perm{Mode: mode, GID: -1}
	if c.SocketGroup == "" {
		return p, nil
	}
	if gid, err := strconv.Atoi(c.SocketGroup); err == nil {
		if gid < 0 {
			return rpc.Perm{}, &FieldError{Field: "socket_group", Msg: fmt.Sprintf("gid %d is negative", gid)}
		}
		p.GID = gid
		return p, nil
	}
	g, err := user.LookupGroup(c.SocketGroup)
	if err != nil {
		return rpc.Perm{}, &FieldError{Field: "socket_group", Msg: fmt.Sprintf("no group %q on this host (create it, e.g. groupadd --system %s, or name another): %v", c.SocketGroup, c.SocketGroup, err)}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return rpc.Perm{}, &FieldError{Field: "socket_group", Msg: fmt.Sprintf("group %q has gid %q, not a number", c.SocketGroup, g.Gid)}
	}
	p.GID = gid
	return p, nil
}

// Membership returns the failure detector's timings.
func (c Config) Membership() membership.Config {
	return membership.Config{SuspectAfter: c.SuspectAfter, DeadAfter: c.DeadAfter}
}

// LoadFile overlays the YAML file at path onto c. Unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.LoadYAML(b, path)
}

// LoadYAML overlays the YAML document b onto c; name (the file) is for
// messages. Unknown keys are errors.
func (c *Config) LoadYAML(b []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	return nil
}

// FieldError is one bad config value found by Config.Validate.
type FieldError struct {
	// Field is the yaml key ("suspect_after/dead_after" for the pair).
	Field string
	// Msg says what is wrong with it.
	Msg string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Msg }

// ParseLevel parses a log level (debug, info, warn or error).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("unknown log level %q", s)
	}
	return l, nil
}

// Reloadable are the keys an agent applies while it runs (on SIGHUP); a
// change to any other key needs a restart.
var Reloadable = []string{
	"log_level",
	"allow_peers", "bl_writers", "kv_writers",
	"max_key_bytes", "max_value_bytes", "max_tags", "max_deltas_per_message",
	"max_request_bytes", "max_watchers",
}

// Field is one yaml key of Config.
type Field struct {
	// Key is the yaml key.
	Key   string
	index int
}

// Value returns the field's value in c (settable, c being a pointer).
func (f Field) Value(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().Field(f.index) }

// Fields lists Config's yaml keys in declaration order.
func Fields() []Field {
	t := reflect.TypeFor[Config]()
	var out []Field
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, Field{Key: key, index: i})
	}
	return out
}

// SameValue compares two values of one field; nil and empty lists (or
// maps) are the same.
func SameValue(a, b reflect.Value) bool {
	if (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Merge returns what a running agent applies of next, a whole config loaded
// as at start, over cur, the config it runs with: cur with the Reloadable
// keys that changed taken from next (log_level only if reloadLog), the
// keys it applied, and the other changed keys, which need a restart. The
// result is validated: an error (next invalid, alone or with the restart-
// only settings of cur) means nothing may change.
func Merge(cur, next Config, reloadLog bool) (merged Config, applied, needRestart []string, err error) {
	if err := next.Validate(); err != nil {
		return cur, nil, nil, err
	}
	merged = cur // the running config: restart-only keys stay as they are
	for _, f := range Fields() {
		if SameValue(f.Value(&cur), f.Value(&next)) {
			continue
		}
		if slices.Contains(Reloadable, f.Key) && (f.Key != "log_level" || reloadLog) {
			f.Value(&merged).Set(f.Value(&next))
			applied = append(applied, f.Key)
		} else {
			needRestart = append(needRestart, f.Key)
		}
	}
	if err := merged.Validate(); err != nil {
		return cur, nil, nil, fmt.Errorf("%w (with the settings this agent runs with; restart it to change those)", err)
	}
	return merged, applied, needRestart, nil
}

// PeerIDs parses node ids (as Validate has checked them).
func PeerIDs(ids []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(ids))
	for _, s := range ids {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("config: node id %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// LoadPSK reads the private-network key file psk_file names, in the v1
// format that `rumor keygen --psk` writes (/key/swarm/psk/1.0.0/, an
// encoding line, then the 32-byte key).
func LoadPSK(path string) (pnet.PSK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: psk_file: %w", err)
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("config: psk_file: %s is not a private-network key (create one with `rumor keygen --psk --out FILE`): %w", path, err)
	}
	return psk, nil
}

// SettleBound is the longest settle window a claim can wait: settle if
// fixed, else settle_max.
func (c *Config) SettleBound() time.Duration {
	if c.Settle > 0 {
		return c.Settle
	}
	return c.SettleMax
}

// MinLeaseTTL is the shortest lease TTL the agent grants: the settle bound
// plus lease_margin.
func (c *Config) MinLeaseTTL() time.Duration { return c.SettleBound() + c.LeaseMargin }
