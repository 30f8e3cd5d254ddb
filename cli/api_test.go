package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// startTCPAgent serves a fake agent on loopback TCP with token and returns
// its URL.
func startTCPAgent(t *testing.T, token string) (string, *rpctest.Fake) {
	t.Helper()
	fake := rpctest.New(self, nil)
	ln, err := httpapi.ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := httpapi.NewWithOptions(fake, nil, httpapi.Options{Middleware: apiContract.Middleware(t)})
	go func() { done <- srv.ServeToken(ctx, ln, token) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeToken: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), fake
}

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTCPAPI(t *testing.T) {
	url, _ := startTCPAgent(t, "right-token")
	good, bad := writeToken(t, "right-token"), writeToken(t, "wrong-token")

	runCLI("--api", url, "--token-file", good, "svc", "set", "web", "w1", "--addr", "10.0.0.1:80").expect(t, 0)
	runCLI("--api", url, "--token-file", good, "svc", "ls").expect(t, 0, "web", "w1")

	r := runCLI("--api", url, "--token-file", bad, "svc", "ls").expect(t, 1)
	if !strings.Contains(r.stderr, "wrong API token") {
		t.Errorf("wrong token: stderr %q", r.stderr)
	}
	r = runCLI("--api", url, "svc", "ls").expect(t, 2)
	if !strings.Contains(r.stderr, "--api needs --token-file") {
		t.Errorf("no token file: stderr %q", r.stderr)
	}
	r = runCLI("--api", "http://10.1.2.3:7070", "--token-file", good, "status").expect(t, 2)
	if !strings.Contains(r.stderr, "loopback") {
		t.Errorf("non-loopback --api: stderr %q", r.stderr)
	}
	if err := os.Chmod(good, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI("--api", url, "--token-file", good, "status").expect(t, 2)
	if !strings.Contains(r.stderr, "other users may read it") {
		t.Errorf("world-readable token file: stderr %q", r.stderr)
	}
	if err := os.Chmod(good, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("RUMOR_API", url)
	t.Setenv("RUMOR_TOKEN_FILE", good)
	runCLI("svc", "get", "web", "w1").expect(t, 0, "10.0.0.1:80")
}

// TestLimitErrorsExitUsage: an entry refused by the agent's limits is a bad
// request, so the CLI exits 2.
func TestLimitErrorsExitUsage(t *testing.T) {
	a := startAgent(t)
	a.fake.SetError("ServiceSet", rpc.BadRequest("refused: 65 tags on \"svc/web/w1\" is over the limit of 64 (max_tags)"))
	r := a.run("svc", "set", "web", "w1").expect(t, 2)
	if !strings.Contains(r.stderr, "max_tags") {
		t.Errorf("stderr %q", r.stderr)
	}
}
