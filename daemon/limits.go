package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/wire"
)

// This file enforces the config's bounds on one entry (max_key_bytes,
// max_value_bytes, max_tags) and one gossip message
// (max_deltas_per_message), and serves the local API within its own bounds
// (max_request_bytes, max_watchers, request_timeout, api_listen).

// wireLimits are the bounds gossip messages are decoded with.
func (c Config) wireLimits() wire.Limits {
	return wire.Limits{
		MaxDeltas:   c.MaxDeltasPerMessage,
		MaxKeyBytes: c.MaxKeyBytes,
		MaxValue:    c.MaxValueBytes,
		MaxNode:     wire.DefaultLimits.MaxNode,
	}
}

// rpcOptions are the bounds the local API is served with.
func (c Config) rpcOptions() rpc.Options {
	return rpc.Options{
		MaxRequestBytes: int64(c.MaxRequestBytes),
		MaxWatchers:     c.MaxWatchers,
		RequestTimeout:  c.RequestTimeout,
	}
}

// entryLimitError says which bound of one entry d exceeds, or is nil.
func (c Config) entryLimitError(d crdt.Delta) error {
	if n := len(d.Key); n > c.MaxKeyBytes {
		return fmt.Errorf("key of %d bytes is over the limit of %d (max_key_bytes)", n, c.MaxKeyBytes)
	}
	if n := len(d.Value); n > c.MaxValueBytes {
		return fmt.Errorf("value of %d bytes (encoded) for %q is over the limit of %d (max_value_bytes)", n, d.Key, c.MaxValueBytes)
	}
	if d.Op == crdt.OpPut && crdt.NamespaceOf(d.Key) == crdt.NSService {
		var v crdt.ServiceValue
		if crdt.Decode(d.Value, &v) == nil && len(v.Tags) > c.MaxTags {
			return fmt.Errorf("%d tags on %q is over the limit of %d (max_tags)", len(v.Tags), d.Key, c.MaxTags)
		}
	}
	return nil
}

// checkLimits refuses a remote delta (gossip or anti-entropy) over an
// entry bound, counted under reason "limit".
func (a *Agent) checkLimits(d crdt.Delta) error {
	if err := a.liveConfig().entryLimitError(d); err != nil {
		return &policyError{reason: reasonLimit, err: err}
	}
	return nil
}

// checkWrite refuses a local write over an entry bound as a bad request
// (CLI exit code 2), before anything changes.
func (a *Agent) checkWrite(d crdt.Delta) error {
	if err := a.liveConfig().entryLimitError(d); err != nil {
		return rpc.BadRequest("refused: %v", err)
	}
	return nil
}

// serveAPI serves the local API on the Unix socket and, if api_listen is
// set, on loopback TCP with a bearer token, until ctx is done. The channel
// yields once, when every listener has stopped: nil, or the error of the
// first one that failed on its own (which stops the others).
func (a *Agent) serveAPI(ctx context.Context) (<-chan error, error) {
	sock := a.cfg.SocketPath()
	if err := a.privateDataDir(sock); err != nil {
		return nil, err
	}
	// Under the reload lock, so that a reload either sees this server or
	// happened before it took its limits.
	a.rl.mu.Lock()
	srv := rpc.NewServerWithOptions(a, a.log, a.liveConfig().rpcOptions())
	a.rl.api.Store(srv)
	a.rl.mu.Unlock()
	var (
		serves []func(context.Context) error
		tln    net.Listener
	)
	if a.cfg.APIListen != "" {
		token, err := rpc.ReadToken(a.cfg.APITokenFile)
		if err != nil {
			return nil, fmt.Errorf("api_token_file: %w", err)
		}
		if tln, err = rpc.ListenLoopback(a.cfg.APIListen); err != nil {
			return nil, fmt.Errorf("api_listen: %w", err)
		}
		a.log.Info("local API listening on TCP (bearer token required)", "addr", tln.Addr().String())
		serves = append(serves, func(ctx context.Context) error { return srv.ServeToken(ctx, tln, token) })
	}
	ln, err := rpc.ListenUnix(sock)
	if err != nil {
		if tln != nil {
			_ = tln.Close()
		}
		return nil, err
	}
	a.log.Info("local API listening", "socket", sock)
	serves = append(serves, func(ctx context.Context) error { return srv.Serve(ctx, ln) })

	sctx, stop := context.WithCancel(ctx)
	errc := make(chan error, len(serves))
	for _, serve := range serves {
		go func() { errc <- serve(sctx) }()
	}
	out := make(chan error, 1)
	go func() {
		defer stop()
		var first error
		for range serves {
			if err := <-errc; err != nil && first == nil {
				first = err
				stop()
			}
		}
		out <- first
	}()
	return out, nil
}

// privateDataDir makes the data dir mode 0700 when the socket lives in it:
// the directory then guards the socket as well as the identity key.
func (a *Agent) privateDataDir(sock string) error {
	if filepath.Clean(filepath.Dir(sock)) != filepath.Clean(a.cfg.DataDir) {
		return nil
	}
	fi, err := os.Stat(a.cfg.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // ListenUnix creates it 0700
	}
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(a.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir %s is mode %v and holds the API socket; chmod 700 it: %w", a.cfg.DataDir, perm, err)
		}
		a.log.Warn("data dir was open to other users; made it mode 0700 (it holds the identity key and the API socket)", "dir", a.cfg.DataDir, "was", perm.String())
	}
	return nil
}
