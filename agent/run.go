package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 800 * time.Millisecond

// sessionDrain bounds how long a graceful stop waits for sessions' clients
// to stop their commands and release (the agent releases after it).
const sessionDrain = 500 * time.Millisecond

// Run starts the agent and its local API socket, serves until ctx is
// cancelled, then shuts down and returns nil (or the error that stopped it).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Close()
	if a.opts.NoSocket {
		<-ctx.Done()
		return nil
	}
	// The API outlives ctx by the sessions' drain: their clients release
	// through it.
	sctx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	errc, err := a.serveAPI(sctx)
	if err != nil {
		return errorf("local API: %w", err)
	}
	select {
	case err := <-errc: // the server failed on its own
		return err
	case <-ctx.Done():
	}
	a.kernels.Drain(sessionDrain)
	stopServing()
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	case <-t.C:
		a.log.Warn("local API did not stop in time")
	}
	return nil
}

// rpcOptions are the bounds the local API is served with.
func rpcOptions(c *config.Config) httpapi.Options {
	return httpapi.Options{
		MaxRequestBytes: int64(c.MaxRequestBytes),
		MaxWatchers:     c.MaxWatchers,
		RequestTimeout:  c.RequestTimeout,
	}
}

// serveAPI serves the local API on the Unix socket and, if api_listen is
// set, on loopback TCP with a bearer token, until ctx is done (see
// httpapi.Server.ServeAll).
func (a *Agent) serveAPI(ctx context.Context) (<-chan error, error) {
	sock := a.cfg.SocketPath()
	if err := a.privateDataDir(sock); err != nil {
		return nil, err
	}
	// Under the reload lock, so that a reload either sees this server or
	// happened before it took its limits.
	a.rl.mu.Lock()
	srv := httpapi.NewWithOptions(a, a.log, rpcOptions(a.liveConfig()))
	a.rl.api.Store(srv)
	a.rl.mu.Unlock()
	var (
		tln   net.Listener
		token string
	)
	if a.cfg.APIListen != "" {
		var err error
		if token, err = rpc.ReadToken(a.cfg.APITokenFile); err != nil {
			return nil, fmt.Errorf("api_token_file: %w", err)
		}
		if tln, err = httpapi.ListenLoopback(a.cfg.APIListen); err != nil {
			return nil, fmt.Errorf("api_listen: %w", err)
		}
		a.log.Info("local API listening on TCP (bearer token required)", "addr", tln.Addr().String())
	}
	perm, err := a.cfg.SocketPerm()
	if err == nil {
		var ln net.Listener
		if ln, err = httpapi.ListenUnixPerm(sock, perm); err == nil {
			a.log.Info("local API listening", "socket", sock, "mode", fmt.Sprintf("%04o", uint32(perm.Mode)), "group", a.cfg.SocketGroup)
			a.warnUnreachableSocket(sock, perm)
			return srv.ServeAll(ctx, ln, tln, token), nil
		}
	}
	if tln != nil {
		_ = tln.Close()
	}
	return nil, err
}

// warnUnreachableSocket logs a warning when perm lets the socket's group
// connect but the directory that holds the socket does not let the group
// through (an operator's 0700 directory, say).
func (a *Agent) warnUnreachableSocket(sock string, perm rpc.Perm) {
	if perm.Mode&0o020 == 0 {
		return
	}
	dir := filepath.Dir(sock)
	if ok, err := httpapi.GroupCanReach(dir, perm.GID); err == nil && !ok {
		a.log.Warn("the socket's group cannot pass through the socket's directory, so socket_mode gives it nothing: chmod g+x the directory and give it the socket's group (chgrp), or move the socket", "dir", dir, "socket_group", a.cfg.SocketGroup)
	}
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
