package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// reloadable are the config keys an agent applies while it runs (Reload);
// a change to any other key needs a restart. Each is read where it is
// used, per request or per message, from the live config.
var reloadable = []string{
	"log_level",
	"allow_peers", "bl_writers",
	"max_key_bytes", "max_value_bytes", "max_tags", "max_deltas_per_message",
	"max_request_bytes", "max_watchers",
}

// reloadState is what Reload changes and what reads the reloadable keys.
type reloadState struct {
	mu   sync.Mutex                 // serializes Reload
	live atomic.Pointer[Config]     // the running config with the reloadable keys as last applied
	api  atomic.Pointer[rpc.Server] // the local API server, once it serves
	up   chan struct{}              // closed when Start has finished
	once sync.Once                  // closes up
}

// init records the config the agent starts with.
func (r *reloadState) init(cfg Config) {
	r.live.Store(&cfg)
	r.up = make(chan struct{})
}

// markUp records that Start has finished.
func (r *reloadState) markUp() { r.once.Do(func() { close(r.up) }) }

// liveConfig returns the running config, with the reloadable keys as last
// applied by Reload. It must not be modified.
func (a *Agent) liveConfig() *Config { return a.rl.live.Load() }

// livePolicy is the configured write policy (bl_writers), replaced as a
// whole by Reload while validators read it.
type livePolicy struct{ p atomic.Pointer[policy] }

func (l *livePolicy) set(p policy) { l.p.Store(&p) }

// check is policy.check under the current policy.
func (l *livePolicy) check(ns crdt.Namespace, d crdt.Delta, author string) error {
	return l.p.Load().check(ns, d, author)
}

// mayWrite is policy.mayWrite under the current policy.
func (l *livePolicy) mayWrite(ns crdt.Namespace, node string) bool {
	return l.p.Load().mayWrite(ns, node)
}

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
func (a *Agent) Reload(cfg Config) (ReloadResult, error) {
	var res ReloadResult
	select {
	case <-a.rl.up:
	default:
		return res, errors.New("daemon: reload: the agent is not running yet")
	}
	select {
	case <-a.closed:
		return res, ErrStopped
	default:
	}
	a.rl.mu.Lock()
	defer a.rl.mu.Unlock()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	cur := a.liveConfig()
	next := *cur // the running config: restart-only keys stay as they are
	changed := map[string]bool{}
	for _, f := range configFields() {
		if sameValue(f.get(cur), f.get(&cfg)) {
			continue
		}
		changed[f.key] = true
		if slices.Contains(reloadable, f.key) && (f.key != "log_level" || a.opts.LogLevel != nil) {
			f.get(&next).Set(f.get(&cfg))
			res.Applied = append(res.Applied, f.key)
		} else {
			res.NeedRestart = append(res.NeedRestart, f.key)
		}
	}
	if err := next.Validate(); err != nil {
		return ReloadResult{}, fmt.Errorf("%w (with the settings this agent runs with; restart it to change those)", err)
	}
	for _, key := range res.NeedRestart {
		a.log.Warn("config change needs a restart to take effect", "key", key)
	}
	if len(res.Applied) == 0 {
		a.log.Info("config reloaded: nothing to change", "restart_needed", len(res.NeedRestart))
		return res, nil
	}
	if changed["log_level"] && a.opts.LogLevel != nil {
		level, _ := parseLevel(next.LogLevel) // validated
		a.opts.LogLevel.Set(level)
	}
	if changed["bl_writers"] {
		a.policy.set(newPolicy(next))
	}
	if changed["allow_peers"] {
		allow, err := peerIDs(next.AllowPeers)
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

// configField is one yaml key of Config and how to reach its value.
type configField struct {
	key   string
	index int
}

func (f configField) get(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().Field(f.index) }

// configFields lists Config's yaml keys in declaration order.
func configFields() []configField {
	t := reflect.TypeFor[Config]()
	var out []configField
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, configField{key: key, index: i})
	}
	return out
}

// sameValue compares two config values; nil and empty lists are the same.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Backup writes a consistent snapshot of the agent's state (a copy of its
// state file, see store.Store.Backup) for `rumor backup`. It records the
// time first, so that a restore can tell the snapshot's age.
func (a *Agent) Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := a.markRunning(); err != nil {
		return 0, err
	}
	n, err := a.store.Backup(begin)
	if err == nil {
		a.log.Info("backup written", "bytes", n, "keys", a.store.Len())
	}
	return n, err
}

var _ rpc.Backuper = (*Agent)(nil)

// handleReloads reloads the config on every SIGHUP-like event from hup,
// loading it with load, until done is closed. It waits for the agent to
// be up before the first reload.
func (a *Agent) handleReloads(done <-chan struct{}, hup <-chan struct{}, load func() (Config, error)) {
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
