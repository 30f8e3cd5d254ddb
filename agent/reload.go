package agent

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

// reloadState is what Reload changes and what reads the reloadable keys.
type reloadState struct {
	mu   sync.Mutex                     // serializes Reload
	live atomic.Pointer[config.Config]  // the running config with the reloadable keys as last applied
	api  atomic.Pointer[httpapi.Server] // the local API server, once it serves
	up   chan struct{}                  // closed when Start has finished
	once sync.Once                      // closes up
}

// init records the config the agent starts with.
func (r *reloadState) init(cfg config.Config) {
	r.live.Store(&cfg)
	r.up = make(chan struct{})
}

// markUp records that Start has finished.
func (r *reloadState) markUp() { r.once.Do(func() { close(r.up) }) }

// liveConfig returns the running config, with the reloadable keys as last
// applied by Reload. It must not be modified.
func (a *Agent) liveConfig() *config.Config { return a.rl.live.Load() }

// ReloadResult says what a Reload did, by config key.
type ReloadResult struct {
	// Applied lists the changed keys now in effect.
	Applied []string
	// NeedRestart lists the changed keys that only take effect when the
	// agent restarts; the agent keeps running with their old values.
	NeedRestart []string
}

// Reload applies cfg (a whole config, loaded as at start) to the running
// agent: the keys in reloadable take effect at once, and every other key
// that differs from the running config is reported (and logged, one line
// each) as needing a restart. A config that does not validate, alone or
// together with the restart-only settings the agent runs with, changes
// nothing and is returned as an error. log_level changes only if the agent
// was given Options.LogLevel.
func (a *Agent) Reload(cfg config.Config) (ReloadResult, error) {
	var res ReloadResult
	select {
	case <-a.rl.up:
	default:
		return res, errors.New("agent: reload: the agent is not running yet")
	}
	select {
	case <-a.closed:
		return res, ErrStopped
	default:
	}
	a.rl.mu.Lock()
	defer a.rl.mu.Unlock()
	next, applied, needRestart, err := config.Merge(*a.liveConfig(), cfg, a.opts.LogLevel != nil)
	if err != nil {
		return res, err
	}
	res.Applied, res.NeedRestart = applied, needRestart
	changed := func(key string) bool { return slices.Contains(applied, key) }
	for _, key := range res.NeedRestart {
		a.log.Warn("config change needs a restart to take effect", "key", key)
	}
	if len(res.Applied) == 0 {
		a.log.Info("config reloaded: nothing to change", "restart_needed", len(res.NeedRestart))
		return res, nil
	}
	if changed("log_level") {
		level, _ := config.ParseLevel(next.LogLevel) // validated
		a.opts.LogLevel.Set(level)
	}
	if changed("bl_writers") || changed("kv_writers") {
		a.rep.SetPolicy(replica.NewPolicy(next.BLWriters, next.KVWriters))
	}
	a.rep.SetLimits(limitsOf(next))
	if changed("allow_peers") {
		allow, err := config.PeerIDs(next.AllowPeers)
		if err != nil {
			return ReloadResult{}, err // validated: cannot happen
		}
		if len(allow) == 0 {
			a.log.Warn(openClusterWarning)
		}
		for _, p := range a.node.SetAllowPeers(allow) {
			a.log.Info("closed the connection to a peer no longer in allow_peers", "peer", p)
		}
	}
	a.rl.live.Store(&next)
	if srv := a.rl.api.Load(); srv != nil {
		srv.SetLimits(int64(next.MaxRequestBytes), next.MaxWatchers)
	}
	a.log.Info("config reloaded", "applied", strings.Join(res.Applied, ","), "restart_needed", len(res.NeedRestart))
	return res, nil
}

// HandleReloads reloads the config on every SIGHUP-like event from hup,
// loading it with load, until done is closed. It waits for the agent to
// be up before the first reload.
func (a *Agent) HandleReloads(done <-chan struct{}, hup <-chan struct{}, load func() (config.Config, error)) {
	select {
	case <-a.rl.up:
	case <-done:
		return
	}
	for {
		select {
		case <-done:
			return
		case <-hup:
		}
		a.log.Info("reloading the config (SIGHUP)")
		cfg, err := load()
		if err == nil {
			_, err = a.Reload(cfg)
		}
		if err != nil {
			a.log.Error("config reload failed; nothing changed", "err", err)
		}
	}
}
