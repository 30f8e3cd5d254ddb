package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rumor-dev/rumor/agent"
	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
)

// testClockOffsetEnv shifts the agent's clock, to simulate skew in tests
// (libfaketime does not reach Go binaries). Not for production use.
const testClockOffsetEnv = "RUMOR_TEST_CLOCK_OFFSET"

// agentCommand returns the `rumor agent` command.
func agentCommand() *cli.Command {
	d := config.DefaultConfig()
	return &cli.Command{
		Name:  "agent",
		Usage: "run the rumor agent on this host",
		Description: "Runs the agent in the foreground until SIGINT or SIGTERM (a second signal forces exit).\n" +
			"Settings come from flags, then RUMOR_* environment variables, then --config, then defaults.\n" +
			"SIGHUP reloads --config (with the same flags and environment) and applies " + strings.Join(config.Reloadable, ", ") + "\n" +
			"at once; it logs every other changed key as needing a restart, and a file that does not load or\n" +
			"validate changes nothing. Check a file first with `rumor config check FILE`.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"RUMOR_CONFIG"}, Usage: "YAML config file (see configs/rumor.yaml)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RUMOR_DATA_DIR"}, Usage: "data directory", DefaultText: d.DataDir},
			&cli.StringSliceFlag{Name: "listen", EnvVars: []string{"RUMOR_LISTEN"}, Usage: "libp2p listen multiaddr (repeatable)", DefaultText: strings.Join(d.Listen, ",")},
			&cli.StringSliceFlag{Name: "join", EnvVars: []string{"RUMOR_JOIN"}, Usage: "peer multiaddr ending in /p2p/<id>, by IP or DNS name (/dns4, /dns6), or a /dnsaddr/<name> whose TXT records list peers; names are resolved again at every redial (repeatable; added to bootstrap)"},
			&cli.BoolFlag{Name: "mdns", EnvVars: []string{"RUMOR_MDNS"}, Usage: "find peers of this cluster on the local network by multicast DNS"},
			&cli.StringFlag{Name: "socket", EnvVars: []string{"RUMOR_SOCKET"}, Usage: "local API Unix socket", DefaultText: "<data-dir>/rumor.sock"},
			&cli.StringFlag{Name: "cluster", EnvVars: []string{"RUMOR_CLUSTER"}, Usage: "cluster name", DefaultText: d.Cluster},
			&cli.StringFlag{Name: "region", EnvVars: []string{"RUMOR_REGION"}, Usage: "region tag shown in members"},
			&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"RUMOR_METRICS_ADDR"}, Usage: "host:port for /metrics and the status page; \"\" turns them off", DefaultText: d.MetricsAddr},
			&cli.DurationFlag{Name: "max-skew", EnvVars: []string{"RUMOR_MAX_SKEW"}, Usage: "reject stamps further ahead of our clock than this", DefaultText: d.MaxSkew.String()},
			&cli.DurationFlag{Name: "lease-ttl", EnvVars: []string{"RUMOR_LEASE_TTL"}, Usage: "default kernel lease TTL", DefaultText: d.LeaseTTL.String()},
			&cli.DurationFlag{Name: "settle", EnvVars: []string{"RUMOR_SETTLE"}, Usage: "fixed kernel claim settle window (default: 3 x measured p99 gossip delay, 50ms..2s)"},
			&cli.BoolFlag{Name: "self-fence", EnvVars: []string{"RUMOR_SELF_FENCE"}, Usage: "release this agent's kernel leases as soon as it loses contact with more than half of the nodes it saw alive"},
			&cli.StringSliceFlag{Name: "allow-peer", EnvVars: []string{"RUMOR_ALLOW_PEERS"}, Usage: "node id allowed to connect (repeatable; replaces allow_peers; default: any peer)"},
			&cli.StringFlag{Name: "psk-file", EnvVars: []string{"RUMOR_PSK_FILE"}, Usage: "private-network key file (rumor keygen --psk); TCP only, so no QUIC listen address"},
			&cli.StringSliceFlag{Name: "bl-writer", EnvVars: []string{"RUMOR_BL_WRITERS"}, Usage: "node id allowed to write blacklists (repeatable; replaces bl_writers; default: any member)"},
			&cli.BoolFlag{Name: "reset-state", Usage: "move the state file aside (kept as state.db.corrupt-<time>) and resync from peers: the recovery for a corrupt or unreadable state file"},
			&cli.StringFlag{Name: "log-level", EnvVars: []string{"RUMOR_LOG_LEVEL"}, Usage: "debug, info, warn or error", DefaultText: d.LogLevel},
			&cli.StringFlag{Name: "log-format", EnvVars: []string{"RUMOR_LOG_FORMAT"}, Usage: "text or json", DefaultText: d.LogFormat},
		},
		Action: runAgent,
	}
}

// configFromFlags builds the config: defaults < file < env/flags.
func configFromFlags(c *cli.Context) (config.Config, error) {
	cfg := config.DefaultConfig()
	if p := c.String("config"); p != "" {
		if err := cfg.LoadFile(p); err != nil {
			return cfg, err
		}
	}
	str := map[string]*string{"data-dir": &cfg.DataDir, "socket": &cfg.Socket, "cluster": &cfg.Cluster,
		"region": &cfg.Region, "metrics-addr": &cfg.MetricsAddr, "log-level": &cfg.LogLevel, "log-format": &cfg.LogFormat, "psk-file": &cfg.PSKFile}
	for name, p := range str {
		if c.IsSet(name) {
			*p = c.String(name)
		}
	}
	if c.IsSet("listen") {
		cfg.Listen = splitList(c.StringSlice("listen"))
	}
	cfg.Bootstrap = append(cfg.Bootstrap, splitList(c.StringSlice("join"))...)
	if c.IsSet("allow-peer") {
		cfg.AllowPeers = splitList(c.StringSlice("allow-peer"))
	}
	if c.IsSet("bl-writer") {
		cfg.BLWriters = splitList(c.StringSlice("bl-writer"))
	}
	if c.IsSet("mdns") {
		cfg.MDNS = c.Bool("mdns")
	}
	cfg.ResetState = c.Bool("reset-state")
	if c.IsSet("self-fence") {
		cfg.SelfFence = c.Bool("self-fence")
	}
	dur := map[string]*time.Duration{"max-skew": &cfg.MaxSkew, "lease-ttl": &cfg.LeaseTTL, "settle": &cfg.Settle}
	for name, p := range dur {
		if c.IsSet(name) {
			*p = c.Duration(name)
		}
	}
	return cfg, cfg.Validate()
}

// splitList accepts both repeated flags and comma-separated env values.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func runAgent(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("agent takes no arguments, got %q", c.Args().Slice())
	}
	cfg, err := configFromFlags(c)
	if err != nil {
		return err
	}
	logger, level, err := newLogger(cfg, c.App.ErrWriter)
	if err != nil {
		return err
	}
	var clk clock.Clock = clock.System{}
	if off, err := clock.ParseOffset(os.Getenv(testClockOffsetEnv)); err != nil {
		return err
	} else if off != 0 {
		logger.Warn("test clock offset in effect", "offset", off)
		clk = clock.Offset{Base: clk, Offset: off}
	}
	a, err := agent.New(cfg, agent.Options{Clock: clk, Logger: logger, LogLevel: level})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now gets the default action: exit at once
	}()
	// SIGHUP reloads the config, from its owner goroutine, which ends
	// with the agent. Signals that arrive while one reload runs, or before
	// the agent is up, make one more reload.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	defer signal.Stop(sigs)
	hup, done := make(chan struct{}, 1), make(chan struct{})
	var reloader sync.WaitGroup
	reloader.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-sigs:
				select {
				case hup <- struct{}{}:
				default:
				}
			}
		}
	})
	reloader.Go(func() { a.HandleReloads(done, hup, func() (config.Config, error) { return configFromFlags(c) }) })
	defer reloader.Wait()
	defer close(done)
	return a.Run(ctx)
}

// newLogger returns the agent's logger and the level it logs at, which a
// config reload may change.
func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	l, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	level := new(slog.LevelVar)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), level, nil
}
