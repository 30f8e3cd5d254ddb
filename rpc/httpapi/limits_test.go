package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// limited is a Fake served with opts on a Unix socket.
type limited struct {
	fake   *rpctest.Fake
	srv    *httpapi.Server
	sock   string
	client *rpc.Client
}

func startLimited(t *testing.T, opts httpapi.Options) *limited {
	t.Helper()
	fake := rpctest.New(testNode, nil)
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewWithOptions(fake, nil, checked(t, opts))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	l := &limited{fake: fake, srv: srv, sock: sock, client: rpc.NewClient(sock)}
	t.Cleanup(func() {
		l.client.Close()
		cancel()
		if err := next(t, done); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return l
}

// waitFor polls cond until it holds or testTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// putBody sends body as a svc set request and returns the status and the
// error message of the response.
func putBody(t *testing.T, sock, body string) (int, rpc.Error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPut, "http://rumor/v1/svc/web/w1", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rawClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e rpc.Error
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e
}

// bodyOf returns a svc set body of exactly n bytes.
func bodyOf(n int) string {
	head, tail := `{"status":"up","addr":"`, `"}`
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

func TestMaxRequestBytes(t *testing.T) {
	const limit = 4096
	l := startLimited(t, httpapi.Options{MaxRequestBytes: limit})
	if code, e := putBody(t, l.sock, bodyOf(limit)); code != http.StatusOK {
		t.Fatalf("body of exactly max_request_bytes: %d %+v, want 200", code, e)
	}
	code, e := putBody(t, l.sock, bodyOf(limit+1))
	if code != http.StatusRequestEntityTooLarge || e.Code != rpc.CodeTooLarge || !strings.Contains(e.Message, "larger than 4096 bytes") ||
		e.Details["limit"] != float64(limit) {
		t.Fatalf("body one byte over: %d %+v, want 413 too_large naming the limit", code, e)
	}
	got := check(l.client.ServiceGet(ctxT(t), "web", "w1")).must(t)
	if len(got.Addr) != len(bodyOf(limit))-len(`{"status":"up","addr":""}`) {
		t.Errorf("the refused request changed the instance: addr of %d bytes", len(got.Addr))
	}
}

func TestMaxWatchers(t *testing.T) {
	const limit = 3
	l := startLimited(t, httpapi.Options{MaxWatchers: limit})
	ctx := ctxT(t)
	var cancels []context.CancelFunc
	var dones []<-chan error
	for range limit {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, done := collect(wctx, l.client, "")
		cancels, dones = append(cancels, cancel), append(dones, done)
	}
	if err := l.fake.WaitWatchers(ctx, limit); err != nil {
		t.Fatal(err)
	}
	err := l.client.Watch(ctx, rpc.WatchRequest{}, func(rpc.Event) error { return nil })
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeBusy || e.HTTPStatus() != http.StatusTooManyRequests ||
		!strings.Contains(e.Message, "the limit is 3 (max_watchers)") {
		t.Fatalf("watch over the limit: %v, want busy naming max_watchers", err)
	}
	if n := l.srv.Watchers(); n != limit {
		t.Errorf("after the refused watch: %d watchers, want %d", n, limit)
	}
	cancels[0]()
	if err := next(t, dones[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a watcher slot to free", func() bool { return l.srv.Watchers() == limit-1 })
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, done := collect(wctx, l.client, "")
	if err := l.fake.WaitWatchers(ctx, limit); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := next(t, done); err != nil {
		t.Errorf("watch in the freed slot: %v", err)
	}
}

// TestWatchDisconnectFreesWatcher: a client that goes away mid-watch gives
// its slot back, on the server and in the API.
func TestWatchDisconnectFreesWatcher(t *testing.T) {
	l := startLimited(t, httpapi.Options{MaxWatchers: 1})
	ctx := ctxT(t)
	before := l.srv.Watchers()
	for round := range 3 { // with a limit of 1, a leaked slot fails the next round
		wctx, cancel := context.WithCancel(ctx)
		events, done := collect(wctx, l.client, "svc/")
		if err := l.fake.WaitWatchers(ctx, 1); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		check(l.client.ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Status: "up"})).must(t)
		next(t, events) // mid-stream
		cancel()
		if err := next(t, done); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := l.fake.WaitWatchers(ctx, 0); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		waitFor(t, "the server's watcher count to drop", func() bool { return l.srv.Watchers() == before })
	}
}

func TestRequestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	l := startLimited(t, httpapi.Options{RequestTimeout: timeout})
	ctx := ctxT(t)
	l.fake.SetHook("Status", func(ctx context.Context) error {
		<-ctx.Done() // a request that never finishes by itself
		return ctx.Err()
	})
	_, err := l.client.Status(ctx)
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeTimeout || !strings.Contains(e.Message, "request_timeout (100ms)") {
		t.Fatalf("blocked request: %v, want timeout naming request_timeout", err)
	}
	l.fake.SetHook("Status", nil)
	check(l.client.Status(ctx)).must(t)

	// Watches are exempt: one that outlives the timeout still delivers.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, done := collect(wctx, l.client, "svc/")
	if err := l.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * timeout)
	for time.Now().Before(deadline) { // keep the stream busy past the timeout
		check(l.client.ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Status: "up"})).must(t)
		next(t, events)
	}
	select {
	case err := <-done:
		t.Fatalf("watch ended after the request timeout: %v", err)
	default:
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	l := startLimited(t, httpapi.Options{ReadHeaderTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("unix", l.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/status HTTP/1.1\r\nHost: rumor\r\n"); err != nil { // headers never end
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection with unfinished headers open")
	}
}

// tokenFile writes tok to a fresh file with mode perm.
func tokenFile(t *testing.T, tok string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

func TestTokenAuth(t *testing.T) {
	const token = "s3cret-token-0123456789"
	tok, err := rpc.ReadToken(tokenFile(t, token+"\n", 0o600))
	if err != nil || tok != token {
		t.Fatalf("ReadToken = %q, %v", tok, err)
	}
	fake := rpctest.New(testNode, nil)
	ln, err := httpapi.ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewWithOptions(fake, nil, checked(t, httpapi.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeToken(ctx, ln, tok) }()
	t.Cleanup(func() {
		cancel()
		if err := next(t, done); err != nil {
			t.Errorf("ServeToken returned %v", err)
		}
	})
	url := "http://" + ln.Addr().String()

	for name, header := range map[string]string{"no token": "", "wrong token": "Bearer nope", "right token, wrong scheme": "Basic " + token, "token prefix": "Bearer " + token[:5]} {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, url+"/v1/status", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e rpc.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || e.Code != rpc.CodeUnauthorized || e.Message == "" {
			t.Errorf("%s: %d %+v, want 401 unauthorized", name, resp.StatusCode, e)
		}
	}
	// Nothing got through: a write with a wrong token changes nothing.
	bad, err := rpc.NewTCPClient(url, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.ServiceSet(ctxT(t), "web", "w1", rpc.ServiceSet{Status: "up"}); rpc.CodeOf(err) != rpc.CodeUnauthorized {
		t.Errorf("write with a wrong token: %v, want unauthorized", err)
	}

	good, err := rpc.NewTCPClient(url, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if _, err := good.ServiceGet(ctxT(t), "web", "w1"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("after the refused write: %v, want not found", err)
	}
	st := check(good.Status(ctxT(t))).must(t)
	if st.Node != testNode {
		t.Errorf("status over TCP: node %q", st.Node)
	}
	wctx, wcancel := context.WithCancel(ctxT(t))
	defer wcancel()
	events, _ := collect(wctx, good, "svc/")
	if err := fake.WaitWatchers(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	check(good.ServiceSet(ctxT(t), "web", "w1", rpc.ServiceSet{Status: "up"})).must(t)
	if ev := next(t, events); ev.Key != "svc/web/w1" {
		t.Errorf("watch over TCP: %+v", ev)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "10.0.0.1:7000", "example.com:80", "127.0.0.1"} {
		if ln, err := httpapi.ListenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("ListenLoopback(%q) succeeded", addr)
		} else if !strings.Contains(err.Error(), addr) {
			t.Errorf("ListenLoopback(%q): %v, want the address named", addr, err)
		}
		if _, err := rpc.NewTCPClient("http://"+addr, "tok"); err == nil {
			t.Errorf("NewTCPClient(%q) succeeded", addr)
		}
	}
	if err := rpc.CheckLoopback("0.0.0.0:7000"); !errors.Is(err, rpc.ErrNotLoopback) {
		t.Errorf("CheckLoopback(0.0.0.0:7000) = %v, want ErrNotLoopback", err)
	}
	for _, addr := range []string{"127.0.0.1:7000", "[::1]:7000", "localhost:7000", "127.1.2.3:1"} {
		if err := rpc.CheckLoopback(addr); err != nil {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
	if _, err := rpc.NewTCPClient("http://127.0.0.1:7000", ""); err == nil {
		t.Error("NewTCPClient without a token succeeded")
	}
}

func TestReadTokenRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"missing":        {filepath.Join(t.TempDir(), "none"), "no such file"},
		"empty":          {tokenFile(t, " \n", 0o600), "is empty"},
		"world-readable": {tokenFile(t, "tok", 0o644), "other users may read it"},
		"group-readable": {tokenFile(t, "tok", 0o640), "chmod 600"},
		"two tokens":     {tokenFile(t, "a b", 0o600), "one token"},
		"a directory":    {t.TempDir(), "not a regular file"},
	} {
		if _, err := rpc.ReadToken(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadToken = %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// TestListenUnixPermissions: the socket is 0600 as soon as it exists at its
// path, in a private directory the listener creates or in a shared one.
func TestListenUnixPermissions(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o1777); err != nil { // like /tmp or /run
		t.Fatal(err)
	}
	for _, sock := range []string{filepath.Join(shared, "new", "rumor.sock"), filepath.Join(shared, "rumor.sock")} {
		ln, err := httpapi.ListenUnix(sock)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a socket with 0600", sock, fi.Mode())
		}
		if filepath.Dir(sock) != shared {
			di, _ := os.Stat(filepath.Dir(sock))
			if di.Mode().Perm() != 0o700 {
				t.Errorf("created socket dir has mode %v, want 0700", di.Mode().Perm())
			}
		}
		entries, _ := os.ReadDir(filepath.Dir(sock))
		for _, e := range entries {
			if e.Name() != "rumor.sock" && e.Name() != "new" {
				t.Errorf("left behind in the socket's directory: %s", e.Name())
			}
		}
		c := rpc.NewClient(sock)
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		srv := httpapi.NewWithOptions(rpctest.New(testNode, nil), nil, checked(t, httpapi.Options{}))
		go func() { done <- srv.Serve(ctx, ln) }()
		check(c.Status(ctxT(t))).must(t)
		c.Close()
		cancel()
		if err := next(t, done); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket left after close: %v", err)
		}
	}
	long := filepath.Join(shared, strings.Repeat("d", 120), "rumor.sock")
	if _, err := httpapi.ListenUnix(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("ListenUnix(too long path) = %v", err)
	}
}
