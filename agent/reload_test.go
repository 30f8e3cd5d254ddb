package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// writeConfig writes a YAML config file for an agent in dir and returns
// its path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "rumor.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadConfig loads path over the defaults and validates it, as the agent
// does at start and on SIGHUP.
func loadConfig(path string) (config.Config, error) {
	cfg := config.DefaultConfig()
	if err := cfg.LoadFile(path); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// TestReloadAppliesSafeKeysAndReportsTheRest: an agent started from a
// config file reloads it: log_level, bl_writers and max_key_bytes take
// effect at once, listen is reported as needing a restart and keeps its
// running value; a file that does not validate, sent through the SIGHUP
// path, changes nothing.
func TestReloadAppliesSafeKeysAndReportsTheRest(t *testing.T) {
	dir := t.TempDir()
	base := "data_dir: " + filepath.Join(dir, "data") + "\nlisten: [/ip4/127.0.0.1/tcp/0]\nmetrics_addr: \"\"\n"
	path := writeConfig(t, dir, base+"log_level: info\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	level := new(slog.LevelVar)
	a := startAlone(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})), LogLevel: level})
	ctx := context.Background()
	if _, err := a.BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatalf("bl add before reload: %v", err)
	}

	other := newAuthor(t).String() // the only bl writer from now on
	writeConfig(t, dir, strings.Replace(base, "tcp/0", "tcp/1", 1)+"log_level: debug\nbl_writers: ["+other+"]\nmax_key_bytes: 40\n")
	next, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Reload(next)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if want := []string{"bl_writers", "max_key_bytes", "log_level"}; !sameSet(res.Applied, want) {
		t.Errorf("applied %v, want %v", res.Applied, want)
	}
	if want := []string{"listen"}; !slices.Equal(res.NeedRestart, want) {
		t.Errorf("need restart %v, want %v", res.NeedRestart, want)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after reload, want debug", level.Level())
	}
	_, err = a.BlacklistAdd(ctx, "fraud", "u2", rpc.BlacklistAdd{})
	var re *rpc.Error
	if !errors.As(err, &re) || re.Code != rpc.CodeDenied || !strings.Contains(err.Error(), "bl_writers") {
		t.Errorf("bl add by a node no longer in bl_writers: %v, want denied naming bl_writers", err)
	}
	if _, err := a.ServiceSet(ctx, "web", strings.Repeat("i", 33), rpc.ServiceSet{Status: "up"}); err == nil || !strings.Contains(err.Error(), "max_key_bytes") {
		t.Errorf("a 41-byte key after max_key_bytes 40: %v", err)
	}
	if got := a.liveConfig().Listen; !slices.Equal(got, cfg.Listen) {
		t.Errorf("running listen is %v, want the start value %v", got, cfg.Listen)
	}
	for _, want := range [][2]string{{`msg="config change needs a restart to take effect"`, "key=listen"}, {`msg="config reloaded"`, "applied=max_key_bytes,bl_writers,log_level"}} {
		if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool {
			return strings.Contains(l, want[0]) && strings.Contains(l, want[1])
		}) {
			t.Errorf("log lacks a line with %s and %s:\n%s", want[0], want[1], logs)
		}
	}

	// A bad file through the SIGHUP path: logged, nothing changes.
	writeConfig(t, dir, base+"log_level: warn\nbl_writers: []\nmax_tags: 0\n")
	done, hup := make(chan struct{}), make(chan struct{}, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.HandleReloads(done, hup, func() (config.Config, error) { return loadConfig(path) })
	}()
	hup <- struct{}{}
	eventually(t, 5*time.Second, "the failed reload is logged", func() error {
		if !strings.Contains(logs.String(), `msg="config reload failed; nothing changed"`) {
			return errors.New("not yet")
		}
		return nil
	})
	close(done)
	<-stopped
	if !strings.Contains(logs.String(), "max_tags: must be at least 1") {
		t.Errorf("the failure does not say why:\n%s", logs)
	}
	if ok, _ := a.rep.Policy().MayWrite("bl/l/x", a.ID()); level.Level() != slog.LevelDebug || ok || a.liveConfig().MaxTags != cfg.MaxTags {
		t.Error("a failed reload changed the running config")
	}
}

// TestReloadAllowPeers: an agent started open takes allow_peers on reload
// and drops a connected peer that is not listed.
func TestReloadAllowPeers(t *testing.T) {
	as := startCluster(t, 2, nil)
	a, b := as[0], as[1]
	connected := func() bool { return slices.Contains(a.Gossip().Peers(), b.Gossip().ID()) }
	eventually(t, 10*time.Second, "the agents connect", func() error {
		if !connected() {
			return errors.New("not connected")
		}
		return nil
	})
	next := *a.liveConfig()
	next.AllowPeers = []string{newAuthor(t).String()}
	res, err := a.Reload(next)
	if err != nil || !slices.Equal(res.Applied, []string{"allow_peers"}) || len(res.NeedRestart) != 0 {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	eventually(t, 10*time.Second, "b refused", func() error {
		if connected() || a.Gossip().Refused() == 0 {
			return errors.New("b still admitted")
		}
		return nil
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestReloadKVWriters: kv_writers takes effect on reload, both ways, and
// an unchanged empty setting is not reported as a change.
func TestReloadKVWriters(t *testing.T) {
	dir := t.TempDir()
	base := "data_dir: " + filepath.Join(dir, "data") + "\nlisten: [/ip4/127.0.0.1/tcp/0]\nmetrics_addr: \"\"\n"
	path := writeConfig(t, dir, base+"kv_writers: {}\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a := startAlone(t, cfg, Options{})
	ctx := context.Background()
	if _, err := a.KVPut(ctx, "/config/pay/db", rpc.KVPut{Value: "1"}); err != nil {
		t.Fatalf("kv put before reload: %v", err)
	}
	reload := func(extra string) ReloadResult {
		t.Helper()
		writeConfig(t, dir, base+extra)
		next, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Reload(next)
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		return res
	}
	if res := reload(""); len(res.Applied) != 0 {
		t.Errorf("no kv_writers key after an empty one: applied %v, want nothing", res.Applied)
	}
	other := newAuthor(t).String()
	if res := reload("kv_writers:\n  /config/pay/: [" + other + "]\n"); !slices.Equal(res.Applied, []string{"kv_writers"}) {
		t.Errorf("applied %v, want [kv_writers]", res.Applied)
	}
	_, err = a.KVPut(ctx, "/config/pay/db", rpc.KVPut{Value: "2"})
	if rpc.CodeOf(err) != rpc.CodeDenied || !strings.Contains(err.Error(), "kv_writers /config/pay/") {
		t.Errorf("kv put under a prefix this node no longer may write: %v", err)
	}
	if _, err := a.KVPut(ctx, "/config/web/port", rpc.KVPut{Value: "80"}); err != nil {
		t.Errorf("kv put elsewhere: %v", err)
	}
	reload("kv_writers:\n  /config/pay/: [" + a.ID() + "]\n")
	if _, err := a.KVPut(ctx, "/config/pay/db", rpc.KVPut{Value: "3"}); err != nil {
		t.Errorf("kv put once listed: %v", err)
	}
}
