package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/rumor-dev/rumor/agent"
	rumorcli "github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
	"github.com/urfave/cli/v2"
)

// runCmd runs one of the offline key commands as the CLI would.
func runCmd(args ...string) (stdout string, err error) {
	var out bytes.Buffer
	app := &cli.App{Name: "rumor", Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{idCommand(), keygenCommand()}}
	err = app.Run(append([]string{"rumor"}, args...))
	return out.String(), err
}

func exitCodeOf(err error) int {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestIDAndKeygenCommands(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	keyFile := filepath.Join(dataDir, identity.File)

	// No key yet: say so, point at keygen, create nothing.
	if _, err := runCmd("id", "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "no identity key at "+keyFile) || !strings.Contains(err.Error(), "rumor keygen --out") {
		t.Fatalf("id without a key: %v", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("id created the data dir: %v", err)
	}

	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd("keygen", "--out", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if _, err := peer.Decode(id); err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if _, err := runCmd("keygen", "--out", keyFile); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("keygen over an existing file: %v", err)
	}

	// id reads it from --data-dir, RUMOR_DATA_DIR or the config's data_dir.
	cfgFile := filepath.Join(dir, "rumor.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"id", "--data-dir", dataDir}, {"id", "--config", cfgFile}} {
		if out, err := runCmd(args...); err != nil || strings.TrimSpace(out) != id {
			t.Errorf("%v: %q, %v; want %s", args, out, err, id)
		}
	}
	t.Setenv("RUMOR_DATA_DIR", dataDir)
	if out, err := runCmd("id"); err != nil || strings.TrimSpace(out) != id {
		t.Errorf("id with RUMOR_DATA_DIR: %q, %v; want %s", out, err, id)
	}

	// The agent runs as that node.
	a, err := agent.New(config.LocalConfig(dataDir), agent.Options{NoSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := a.ID()
	a.Close()
	if got != id {
		t.Errorf("agent runs as %s, keygen printed %s", got, id)
	}

	// A private-network key in the v1 format, which the agent loads.
	pskFile := filepath.Join(dir, "cluster.psk")
	if _, err := runCmd("keygen", "--psk", "--out", pskFile); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pskFile)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 3 || lines[0] != "/key/swarm/psk/1.0.0/" || lines[1] != "/base16/" || len(lines[2]) != 64 {
		t.Errorf("psk file:\n%s", b)
	}
	if fi, err := os.Stat(pskFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("psk file: %v, %v", fi, err)
	}
	if psk, err := pnet.DecodeV1PSK(bytes.NewReader(b)); err != nil || len(psk) != 32 {
		t.Errorf("the psk file does not load: %d bytes, %v", len(psk), err)
	}
	if _, err := runCmd("keygen", "--psk", "--out", pskFile); err == nil {
		t.Error("keygen --psk overwrote a file")
	}

	// Usage errors exit 2.
	for _, args := range [][]string{{"keygen"}, {"keygen", "file"}, {"id", "extra"}} {
		if _, err := runCmd(args...); exitCodeOf(err) != exitUsage {
			t.Errorf("%v: %v, want exit %d", args, err, exitUsage)
		}
	}
}

// writeNewFile creates path (mode 0600) with b, refusing an existing file.

// serveFake serves a fake agent with node id node on a Unix socket until
// the test ends, and returns the socket's path and a function that stops it.
func serveFake(t *testing.T, node string) (string, func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.New(rpctest.New(node, nil), nil).Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	}
	t.Cleanup(stop)
	return sock, stop
}

func TestIDAsksTheAgentOnTheSocket(t *testing.T) {
	for _, v := range []string{"RUMOR_SOCKET", "RUMOR_API", "RUMOR_TOKEN_FILE", "RUMOR_DATA_DIR", "RUMOR_CONFIG"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	// The agent's id differs from the one in the data dir.
	const agentID = "12D3KooWAgentAgentAgentAgentAgentAGNT0001"
	sock, stop := serveFake(t, agentID)
	dataDir := t.TempDir()
	k, b, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeNewFile(filepath.Join(dataDir, identity.File), b); err != nil {
		t.Fatal(err)
	}
	keyID, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}

	id := func(args ...string) (int, string, string) {
		return runRumor(args, idCommand())
	}
	for _, args := range [][]string{{"--socket", sock, "id"}, {"id", "--socket", sock}, {"id", "--socket=" + sock, "-o", "json"}} {
		if code, out, errs := id(args...); code != 0 || out != agentID+"\n" || errs != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want the agent's id", args, code, out, errs)
		}
	}
	// Offline, from the data dir, as before.
	if code, out, errs := id("id", "--data-dir", dataDir); code != 0 || out != keyID.String()+"\n" {
		t.Errorf("id --data-dir: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Both: a usage error that names them.
	for _, args := range [][]string{{"--socket", sock, "id", "--data-dir", dataDir}, {"id", "--config", "x.yaml", "--socket", sock}} {
		if code, out, errs := id(args...); code != rumorcli.ExitUsage || out != "" || !strings.Contains(errs, "not both") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, errs)
		}
	}
	// The environment counts as the flags do.
	t.Setenv("RUMOR_SOCKET", sock)
	if code, out, errs := id("id"); code != 0 || out != agentID+"\n" {
		t.Errorf("RUMOR_SOCKET: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := id("id", "--data-dir", dataDir); code != rumorcli.ExitUsage || !strings.Contains(errs, "--socket") {
		t.Errorf("RUMOR_SOCKET and --data-dir: exit %d, stderr %q; want a usage error", code, errs)
	}
	// No agent on the socket: an error, not the data dir's id.
	stop()
	if code, out, errs := id("id"); code != rumorcli.ExitError || out != "" || !strings.Contains(errs, "cannot reach") {
		t.Errorf("stopped agent: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
