package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 800 * time.Millisecond

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
	errc, err := a.serveAPI(ctx)
	if err != nil {
		return fmt.Errorf("daemon: local API: %w", err)
	}
	select {
	case err := <-errc: // the server failed on its own
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	case <-time.After(shutdownGrace):
		a.log.Warn("local API did not stop in time")
	}
	return nil
}
