package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

const testNode = "12D3KooWTestNodeAAAAAAAAAAAAAAAAself0001"

// testTimeout bounds every wait in these tests; nothing should come near it.
const testTimeout = 10 * time.Second

// agent is a Fake served by a real Server on a Unix socket.
type agent struct {
	fake   *rpctest.Fake
	sock   string
	client *rpc.Client
	stop   func() error // cancels Serve and returns its result
}

func startAgent(t *testing.T, api rpc.API) *agent {
	t.Helper()
	fake, _ := api.(*rpctest.Fake)
	if api == nil {
		fake = rpctest.New(testNode, nil)
		api = fake
	}
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := httpapi.NewWithOptions(api, nil, checked(t, httpapi.Options{}))
	go func() { done <- srv.Serve(ctx, ln) }()
	a := &agent{fake: fake, sock: sock, client: rpc.NewClient(sock)}
	stopped := false
	var result error
	a.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-done:
			case <-time.After(testTimeout):
				t.Error("Serve did not return after cancel")
				result = errors.New("serve did not return")
			}
		}
		return result
	}
	t.Cleanup(func() {
		a.client.Close()
		if err := a.stop(); err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	})
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient returns an http.Client that dials the socket, for requests the
// rpc.Client would never send.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// result lets a test fail on the error of a two-valued call inline:
// check(c.Status(ctx)).must(t).
type result[T any] struct {
	v   T
	err error
}

func check[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// TestRoundTrip calls every API method through the Client and compares the
// answer with the fake's own.
func TestRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fake := rpctest.New(testNode, func() time.Time { return now })
	a := startAgent(t, fake)
	c, ctx := a.client, ctxT(t)

	// Status, Members
	equal(t, "Status", check(c.Status(ctx)).must(t), check(fake.Status(ctx)).must(t))
	fake.SetMembers([]rpc.Member{
		{Node: testNode, Self: true, Connected: true},
		{Node: "peer", Addrs: []string{"/ip4/10.0.0.2/tcp/1"}, Region: "eu", LastHeard: now, Services: 2, Leases: 1},
	})
	equal(t, "Members", check(c.Members(ctx)).must(t), check(fake.Members(ctx)).must(t))

	// svc
	svc := check(c.ServiceSet(ctx, "web", "i-1", rpc.ServiceSet{Addr: "10.0.0.1:80", Status: "up", Tags: map[string]string{"zone": "a"}, TTLMillis: 30000})).must(t)
	equal(t, "ServiceSet", svc, check(fake.ServiceGet(ctx, "web", "i-1")).must(t))
	if !svc.Up || svc.Owner != testNode || !svc.Expires.Equal(now.Add(30*time.Second)) {
		t.Errorf("ServiceSet = %+v", svc)
	}
	check(c.ServiceSet(ctx, "web", "i-2", rpc.ServiceSet{Status: "down"})).must(t)
	check(c.ServiceSet(ctx, "db", "p", rpc.ServiceSet{Status: "up"})).must(t)
	equal(t, "ServiceGet", check(c.ServiceGet(ctx, "web", "i-1")).must(t), svc)
	for _, tc := range []struct {
		service string
		up      bool
	}{{"", false}, {"", true}, {"web", false}, {"web", true}, {"none", false}} {
		got := check(c.ServiceList(ctx, tc.service, tc.up)).must(t)
		want := check(fake.ServiceList(ctx, tc.service, tc.up)).must(t)
		if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("ServiceList(%q, %v) = %+v, want %+v", tc.service, tc.up, got, want)
		}
		if got == nil {
			t.Errorf("ServiceList(%q, %v) = nil, want a slice", tc.service, tc.up)
		}
	}
	if err := c.ServiceDelete(ctx, "web", "i-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := fake.ServiceGet(ctx, "web", "i-2"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("after ServiceDelete: %v", err)
	}

	// bl
	e := check(c.BlacklistAdd(ctx, "tokens", "t1", rpc.BlacklistAdd{Reason: "logout", TTLMillis: 60000})).must(t)
	equal(t, "BlacklistAdd", e, rpc.BlacklistEntry{List: "tokens", ID: "t1", Reason: "logout", AddedBy: testNode, Added: now, Expires: now.Add(time.Minute)})
	got, ok, err := c.BlacklistHas(ctx, "tokens", "t1")
	if err != nil || !ok {
		t.Fatalf("BlacklistHas present = %v, %v", ok, err)
	}
	equal(t, "BlacklistHas", got, e)
	if _, ok, err := c.BlacklistHas(ctx, "tokens", "nope"); err != nil || ok {
		t.Errorf("BlacklistHas absent = %v, %v", ok, err)
	}
	check(c.BlacklistAdd(ctx, "tokens", "t2", rpc.BlacklistAdd{})).must(t)
	equal(t, "BlacklistList", check(c.BlacklistList(ctx, "tokens")).must(t), check(fake.BlacklistList(ctx, "tokens")).must(t))
	if err := c.BlacklistRemove(ctx, "tokens", "t1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := fake.BlacklistHas(ctx, "tokens", "t1"); ok {
		t.Error("t1 still present after BlacklistRemove")
	}
	if l := check(c.BlacklistList(ctx, "empty")).must(t); l == nil || len(l) != 0 {
		t.Errorf("BlacklistList(empty) = %#v, want []", l)
	}

	// task
	task := check(c.TaskAssign(ctx, "job-1", rpc.TaskAssign{})).must(t)
	equal(t, "TaskAssign", task, rpc.Task{ID: "job-1", Owner: testNode, State: "queued", UpdatedBy: testNode, Updated: now})
	check(c.TaskAssign(ctx, "job-2", rpc.TaskAssign{Node: "other"})).must(t)
	task = check(c.TaskUpdate(ctx, "job-1", rpc.TaskUpdate{State: "done", Result: "s3://out"})).must(t)
	if task.State != "done" || task.Result != "s3://out" {
		t.Errorf("TaskUpdate = %+v", task)
	}
	task = check(c.TaskCancel(ctx, "job-2")).must(t)
	if task.State != "cancel-requested" || task.Owner != "other" {
		t.Errorf("TaskCancel = %+v", task)
	}
	equal(t, "TaskGet", check(c.TaskGet(ctx, "job-2")).must(t), task)
	equal(t, "TaskList", check(c.TaskList(ctx, rpc.TaskFilter{})).must(t), check(fake.TaskList(ctx, rpc.TaskFilter{})).must(t))

	// kernel
	res := check(c.KernelClaim(ctx, "gpu0", rpc.KernelClaim{TTLMillis: 5000, Job: "train"})).must(t)
	want := rpc.Kernel{ID: "gpu0", Holder: testNode, Epoch: 1, Job: "train", Granted: now, Expires: now.Add(5 * time.Second), Live: true}
	equal(t, "KernelClaim", res, rpc.ClaimResult{Granted: true, Kernel: want})
	want.Expires = now.Add(rpctest.DefaultTTL)
	equal(t, "KernelRenew", check(c.KernelRenew(ctx, "gpu0", rpc.KernelRenew{})).must(t), want)
	equal(t, "KernelGet", check(c.KernelGet(ctx, "gpu0")).must(t), want)
	fake.PutKernel(rpc.Kernel{ID: "gpu1", Holder: "other", Epoch: 7, Expires: now.Add(time.Hour)})
	res = check(c.KernelClaim(ctx, "gpu1", rpc.KernelClaim{})).must(t)
	if res.Granted || res.Kernel.Holder != "other" || res.Kernel.Epoch != 7 {
		t.Errorf("KernelClaim of a held kernel = %+v", res)
	}
	want.Released, want.Live, want.Expires = true, false, time.Time{} // a released lease has no expiry
	equal(t, "KernelRelease", check(c.KernelRelease(ctx, "gpu0", rpc.KernelRelease{})).must(t), want)
	equal(t, "KernelList", check(c.KernelList(ctx)).must(t), check(fake.KernelList(ctx)).must(t))

	// A session: granted on its stream; when the client goes away, the
	// server's context ends and the API releases the lease.
	sctx, endSession := context.WithCancel(ctx)
	granted := make(chan rpc.SessionEvent, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.KernelSession(sctx, "gpu2", rpc.KernelClaim{TTLMillis: 5000}, func(ev rpc.SessionEvent) error {
			granted <- ev
			return nil
		})
	}()
	if ev := <-granted; ev.Event != rpc.SessionGranted || ev.Session == "" || ev.Kernel.ID != "gpu2" || !ev.Kernel.Live {
		t.Errorf("KernelSession = %+v", ev)
	}
	endSession()
	if err := <-done; err != nil {
		t.Errorf("KernelSession after cancel: %v", err)
	}
	for {
		if k := check(c.KernelGet(ctx, "gpu2")).must(t); k.Released {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the session's lease was not released after its client went away")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// A denied session ends after its denial, without an error.
	var denied []string
	if err := c.KernelSession(ctx, "gpu1", rpc.KernelClaim{}, func(ev rpc.SessionEvent) error {
		denied = append(denied, ev.Event)
		return nil
	}); err != nil || len(denied) != 1 || denied[0] != rpc.SessionDenied {
		t.Errorf("denied session: %v %v", denied, err)
	}
}

// TestPathSegments checks that names with awkward characters survive the
// trip, and that names that cannot be a segment are refused locally.
// Blacklist ids may hold them (BlacklistIDRule); reads of other names take
// any segment, so entries written before the name rule stay reachable.
func TestPathSegments(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	for _, name := range []string{".", "..", "q?x=1#frag", "100%", "ünï", "a+b", "%2F", "semi;colon", "user@example.com"} {
		e, err := a.client.BlacklistAdd(ctx, "l", name, rpc.BlacklistAdd{})
		if err != nil {
			t.Errorf("BlacklistAdd(%q): %v", name, err)
			continue
		}
		if e.List != "l" || e.ID != name {
			t.Errorf("BlacklistAdd(%q) stored %q/%q", name, e.List, e.ID)
		}
		if _, ok, err := a.client.BlacklistHas(ctx, "l", name); err != nil || !ok {
			t.Errorf("BlacklistHas(%q) = %v, %v", name, ok, err)
		}
		// Not a valid service name, but a read reaches the API intact:
		// not found, not a bad request.
		if _, err := a.client.ServiceGet(ctx, name, name); rpc.CodeOf(err) != rpc.CodeNotFound {
			t.Errorf("ServiceGet(%q) = %v, want not_found", name, err)
		}
	}
	for _, name := range []string{"", "a/b", "/"} {
		_, err := a.client.ServiceSet(ctx, "web", name, rpc.ServiceSet{Status: "up"})
		if rpc.CodeOf(err) != rpc.CodeBadRequest {
			t.Errorf("ServiceSet(web, %q) = %v, want bad_request", name, err)
		}
		if _, err := a.client.ServiceGet(ctx, "web", name); rpc.CodeOf(err) != rpc.CodeBadRequest {
			t.Errorf("ServiceGet(web, %q) = %v, want bad_request", name, err)
		}
	}
	// Not even an escaped '/' reaches the API.
	resp, err := rawClient(a.sock).Get("http://rumor/v1/svc/web/a%2Fb")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /v1/svc/web/a%%2Fb: %s, want 400", resp.Status)
	}
}

// TestErrorCodes checks that API errors keep their code through the Client
// and map to the right HTTP status on the wire.
func TestErrorCodes(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	hc := rawClient(a.sock)
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{rpc.BadRequest("bad %s", "thing"), rpc.CodeBadRequest, 400},
		{rpc.NotFound("no such"), rpc.CodeNotFound, 404},
		{rpc.Denied("not yours"), rpc.CodeDenied, 409},
		{errors.New("disk on fire"), rpc.CodeInternal, 500},
		{&rpc.Error{Code: "weird", Message: "unknown code"}, "weird", 500},
	} {
		a.fake.SetError("ServiceDelete", tc.err)
		err := a.client.ServiceDelete(ctx, "web", "i")
		var e *rpc.Error
		if !errors.As(err, &e) {
			t.Errorf("%v: got %T %v, want *rpc.Error", tc.err, err, err)
			continue
		}
		if e.Code != tc.code || e.Message != tc.err.Error() {
			t.Errorf("%v: got code %q message %q", tc.err, e.Code, e.Message)
		}

		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://rumor/v1/svc/web/i", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body rpc.Error
		derr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || derr != nil || body.Code != tc.code {
			t.Errorf("%v: HTTP %d %+v (%v), want %d", tc.err, resp.StatusCode, body, derr, tc.status)
		}
	}
	// The fake's own NotFound for a missing key.
	a.fake.SetError("ServiceDelete", nil)
	if _, err := a.client.ServiceGet(ctx, "web", "none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("missing key: %v", err)
	}
	if err := a.client.ServiceDelete(ctx, "web", "none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("delete missing key: %v", err)
	}
}

// TestBlacklistHasAbsentIsNotFound: GET /v1/bl/{list}/{id} answers an
// absent id 404 with code not_found, like the other routes for a missing
// key, not 200 with a zero entry; Client.BlacklistHas reports it as not
// present, without an error, and passes other errors on.
func TestBlacklistHasAbsentIsNotFound(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	hc := rawClient(a.sock)
	check(a.client.BlacklistAdd(ctx, "tokens", "t1", rpc.BlacklistAdd{Reason: "logout"})).must(t)
	get := func(p string) (int, []byte) {
		t.Helper()
		resp, err := hc.Get("http://rumor" + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}

	status, body := get("/v1/bl/tokens/nope")
	var e rpc.Error
	if err := json.Unmarshal(body, &e); status != http.StatusNotFound || err != nil || e.Code != rpc.CodeNotFound || !strings.Contains(e.Message, "nope is not on list tokens") {
		t.Errorf("GET absent id: HTTP %d %s, want 404 with code not_found", status, body)
	}
	status, body = get("/v1/bl/tokens/t1")
	var chk rpc.BlacklistCheck
	if err := json.Unmarshal(body, &chk); status != http.StatusOK || err != nil || !chk.Present || chk.Entry.ID != "t1" {
		t.Errorf("GET present id: HTTP %d %s, want 200 with the entry", status, body)
	}

	got, ok, err := a.client.BlacklistHas(ctx, "tokens", "nope")
	if err != nil || ok {
		t.Fatalf("BlacklistHas absent = %v, %v; want false, nil", ok, err)
	}
	equal(t, "BlacklistHas absent entry", got, rpc.BlacklistEntry{List: "tokens", ID: "nope"})
	if _, ok, err := a.client.BlacklistHas(ctx, "tokens", "t1"); err != nil || !ok {
		t.Errorf("BlacklistHas present = %v, %v; want true, nil", ok, err)
	}
	a.fake.SetError("BlacklistHas", errors.New("disk on fire"))
	if _, ok, err := a.client.BlacklistHas(ctx, "tokens", "t1"); rpc.CodeOf(err) != rpc.CodeInternal || ok {
		t.Errorf("BlacklistHas with a failing agent = %v, %v; want an internal error", ok, err)
	}
}

// TestBadBodies sends bad request bodies, most of which the Client would
// never send.
func TestBadBodies(t *testing.T) {
	a := startAgent(t, nil)
	hc := rawClient(a.sock)
	big := `{"status":"up","addr":"` + strings.Repeat("x", rpc.MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed", "PUT", "/v1/svc/web/i", `{"status":`, 400},
		{"not an object", "PUT", "/v1/svc/web/i", `[1,2]`, 400},
		{"unknown field", "PUT", "/v1/svc/web/i", `{"status":"up","color":"red"}`, 400},
		{"wrong type", "PUT", "/v1/svc/web/i", `{"status":1}`, 400},
		{"trailing data", "PUT", "/v1/svc/web/i", `{"status":"up"} {}`, 400},
		{"too large", "PUT", "/v1/svc/web/i", big, 413},
		{"body on cancel", "POST", "/v1/task/t/cancel", `{"x":1}`, 400},
		{"bad up", "GET", "/v1/svc?up=maybe", "", 400},
		{"good", "PUT", "/v1/svc/web/i", `{"status":"up"}`, 200},
		{"empty body is the zero request", "POST", "/v1/task/t/assign", "", 200},
		{"empty object", "POST", "/v1/kernel/k/claim", "{}", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://rumor"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.want >= 400 {
				var e rpc.Error
				if err := json.Unmarshal(b, &e); err != nil || e.HTTPStatus() != tc.want || e.Message == "" {
					t.Errorf("body %s: want {code: ..., message: ...} with the code of %d", b, tc.want)
				}
			}
		})
	}

	// A too-large request sent the ordinary way; the client still works
	// afterwards. (Same agent: the server lingers 0.5 s on such a conn.)
	tags := map[string]string{"blob": strings.Repeat("x", 2*rpc.MaxBodyBytes)}
	_, err := a.client.ServiceSet(ctxT(t), "web", "i", rpc.ServiceSet{Status: "up", Tags: tags})
	if rpc.CodeOf(err) != rpc.CodeTooLarge {
		t.Fatalf("oversized ServiceSet: got %v, want too_large", err)
	}
	if _, err := a.client.Status(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestNonJSONError checks that an answer that is not an rpc error (another
// server on the socket, an old agent) becomes a readable internal error.
func TestNonJSONError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := rpc.NewClient(sock)
	defer c.Close()
	_, err = c.Status(ctxT(t))
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeInternal || !strings.Contains(e.Message, "404") {
		t.Fatalf("got %v, want an internal *rpc.Error naming the 404", err)
	}
}

// collect runs Watch in a goroutine and returns its events and its result.
func collect(ctx context.Context, c *rpc.Client, prefix string) (<-chan rpc.Event, <-chan error) {
	events := make(chan rpc.Event, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, rpc.WatchRequest{Prefix: prefix}, func(ev rpc.Event) error {
			events <- ev
			return nil
		})
	}()
	return events, done
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

// TestWatch checks order, filtering, and that the API's watch ends when the
// client goes away.
func TestWatch(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, done := collect(wctx, a.client, "svc/web/")
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	const n = 50
	var want []string
	for i := range n {
		inst := fmt.Sprintf("i%03d", i)
		want = append(want, "svc/web/"+inst)
		check(a.client.ServiceSet(ctx, "web", inst, rpc.ServiceSet{Status: "up"})).must(t)
		check(a.client.ServiceSet(ctx, "db", inst, rpc.ServiceSet{Status: "up"})).must(t) // filtered out
	}
	if err := a.client.ServiceDelete(ctx, "web", "i000"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "svc/web/i000")
	for i, key := range want {
		ev := next(t, events)
		if ev.Key != key {
			t.Fatalf("event %d: key %q, want %q", i, ev.Key, key)
		}
		if i == n {
			if ev.Op != "delete" || ev.Value != nil {
				t.Errorf("last event: %+v, want a delete without value", ev)
			}
			break
		}
		v, _ := ev.Value.(map[string]any)
		if ev.Op != "put" || ev.Node != testNode || v["service"] != "web" || v["status"] != "up" {
			t.Errorf("event %d: %+v, want a put with the service as value", i, ev)
		}
	}

	cancel()
	if err := next(t, done); err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
	// The server must pass the client's departure on to the API.
	if err := a.fake.WaitWatchers(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFnError checks that fn's error ends the watch on both sides.
func TestWatchFnError(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	stop := errors.New("enough")
	done := make(chan error, 1)
	go func() {
		done <- a.client.Watch(ctx, rpc.WatchRequest{}, func(rpc.Event) error { return stop })
	}()
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	check(a.client.TaskAssign(ctx, "t", rpc.TaskAssign{})).must(t)
	if err := next(t, done); !errors.Is(err, stop) {
		t.Errorf("Watch = %v, want fn's error", err)
	}
	if err := a.fake.WaitWatchers(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// droppingAPI sends some events, then drops the watcher with an error.
type droppingAPI struct {
	*rpctest.Fake
	err error
}

func (d droppingAPI) Watch(ctx context.Context, req rpc.WatchRequest, fn func(rpc.Event) error) error {
	prefix := req.Prefix
	for i := range 3 {
		if err := fn(rpc.Event{Key: prefix + string(rune('a'+i)), Op: "put"}); err != nil {
			return err
		}
	}
	return d.err
}

// TestWatchError checks that the reason the API drops a watch reaches the
// client with its code, after the events sent before it.
func TestWatchError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{rpc.BadRequest("bad prefix"), rpc.CodeBadRequest},
		{errors.New("watcher fell behind"), rpc.CodeInternal},
	} {
		a := startAgent(t, droppingAPI{rpctest.New(testNode, nil), tc.err})
		var keys []string
		err := a.client.Watch(ctxT(t), rpc.WatchRequest{Prefix: "k/"}, func(ev rpc.Event) error {
			keys = append(keys, ev.Key)
			return nil
		})
		var e *rpc.Error
		if !errors.As(err, &e) || e.Code != tc.code || e.Message != tc.err.Error() {
			t.Errorf("Watch = %v, want code %s message %q", err, tc.code, tc.err)
		}
		equal(t, "keys", keys, []string{"k/a", "k/b", "k/c"})
	}
	// An API error before any event.
	a := startAgent(t, nil)
	a.fake.SetError("Watch", rpc.Denied("no watching"))
	err := a.client.Watch(ctxT(t), rpc.WatchRequest{}, func(rpc.Event) error { return nil })
	if rpc.CodeOf(err) != rpc.CodeDenied {
		t.Errorf("Watch = %v, want denied", err)
	}
}

// TestShutdownEndsWatch checks that Serve returns nil on cancel while a watch
// is open, and that the watcher learns the stream was closed.
func TestShutdownEndsWatch(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	_, done := collect(ctx, a.client, "")
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if err := next(t, done); !errors.Is(err, rpc.ErrWatchClosed) {
		t.Errorf("Watch = %v, want ErrWatchClosed", err)
	}
	if a.fake.Watchers() != 0 {
		t.Errorf("%d watchers left after shutdown", a.fake.Watchers())
	}
	// The socket file is gone, and the client says the agent is unreachable.
	if _, err := os.Stat(a.sock); !os.IsNotExist(err) {
		t.Errorf("socket after shutdown: %v", err)
	}
	if _, err := a.client.Status(ctx); !errors.Is(err, rpc.ErrAgentUnreachable) {
		t.Errorf("Status after shutdown = %v, want ErrAgentUnreachable", err)
	}
}

func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)

	// No socket file.
	sock := filepath.Join(dir, "none.sock")
	_, err := rpc.NewClient(sock).Status(ctx)
	if !errors.Is(err, rpc.ErrAgentUnreachable) {
		t.Fatalf("got %v, want ErrAgentUnreachable", err)
	}
	want := "cannot reach the rumor agent at " + sock + `: is "rumor agent" running? (`
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("message %q, want prefix %q and the cause", err, want)
	}

	// A stale socket file: nothing listens.
	stale := staleSocket(t, dir)
	err = rpc.NewClient(stale).Watch(ctx, rpc.WatchRequest{}, func(rpc.Event) error { return nil })
	if !errors.Is(err, rpc.ErrAgentUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("stale socket: %v", err)
	}
}

// staleSocket leaves a socket file in dir that nothing listens on.
func staleSocket(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	return p
}

func TestListenUnix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "sub")
	sock := filepath.Join(dir, "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{sock, 0o600}, {dir, 0o700}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}

	// Something answers: refuse, and leave the socket alone.
	_, err = httpapi.ListenUnix(sock)
	if err == nil || !errors.Is(err, httpapi.ErrSocketInUse) || err.Error() != "another agent is already serving on "+sock {
		t.Errorf("second ListenUnix = %v, want refusal", err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("live socket was disturbed: %v", err)
	} else {
		c.Close()
	}
}

func TestListenUnixReplacesStale(t *testing.T) {
	dir := t.TempDir()
	sock := staleSocket(t, dir)
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestListenUnixKeepsOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notasocket")
	if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := httpapi.ListenUnix(p); err == nil {
		t.Fatal("ListenUnix over a regular file succeeded")
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, []byte("precious")) {
		t.Errorf("file changed: %q, %v", b, err)
	}
}

// slowClaimAPI blocks KernelClaim until release is closed.
type slowClaimAPI struct {
	*rpctest.Fake
	entered chan struct{}
	release chan struct{}
}

func (s slowClaimAPI) KernelClaim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	close(s.entered)
	<-s.release
	return s.Fake.KernelClaim(ctx, id, req)
}

// TestShutdownFinishesRequests checks that a request in flight when Serve's
// ctx is cancelled still gets its answer.
func TestShutdownFinishesRequests(t *testing.T) {
	api := slowClaimAPI{rpctest.New(testNode, nil), make(chan struct{}), make(chan struct{})}
	a := startAgent(t, api)
	ctx := ctxT(t)
	type answer struct {
		res rpc.ClaimResult
		err error
	}
	got := make(chan answer, 1)
	go func() {
		res, err := a.client.KernelClaim(ctx, "k", rpc.KernelClaim{})
		got <- answer{res, err}
	}()
	next(t, api.entered)

	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	// Wait until the server no longer accepts, then let the claim finish.
	deadline := time.Now().Add(testTimeout)
	for {
		c, err := net.Dial("unix", a.sock)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepting after cancel")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-stopped:
		t.Fatal("Serve returned with a request in flight")
	default:
	}
	close(api.release)
	ans := next(t, got)
	if ans.err != nil || !ans.res.Granted {
		t.Errorf("claim in flight during shutdown = %+v, %v", ans.res, ans.err)
	}
	if err := next(t, stopped); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// otherGroup returns a group other than the process's primary one that the
// process may give a file: a supplementary group, or, as root (which may
// chown to any group), an unused gid. ok is false for an unprivileged
// process in its primary group only, which cannot give a file another
// group.
func otherGroup() (gid int, ok bool) {
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g != os.Getegid() {
			return g, true
		}
	}
	if os.Geteuid() == 0 {
		return 54321, true
	}
	return 0, false
}

func TestListenUnixPerm(t *testing.T) {
	gid, ok := otherGroup()
	if !ok {
		t.Skip("this user is in its primary group only and is not root, so it cannot give the socket another group (the group's test needs a supplementary group)")
	}
	dir := filepath.Join(t.TempDir(), "run", "rumor")
	sock := filepath.Join(dir, "rumor.sock")
	perm := rpc.Perm{Mode: 0o660, GID: gid}
	ln, err := httpapi.ListenUnixPerm(sock, perm)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{sock, 0o660}, {dir, 0o710}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
			t.Errorf("%s: group %d, want %d", c.path, st.Gid, gid)
		}
	}
	if ok, err := httpapi.GroupCanReach(dir, gid); err != nil || !ok {
		t.Errorf("GroupCanReach(%s, %d) = %v, %v; want true", dir, gid, ok, err)
	}
	if ok, err := httpapi.GroupCanReach(dir, gid+1); err != nil || ok {
		t.Errorf("GroupCanReach(%s, another group) = %v, %v; want false", dir, ok, err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("dial: %v", err)
	} else {
		c.Close()
	}
	// Nothing but the socket is left in the directory (the private
	// directory it was made in is gone).
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
		t.Errorf("socket directory holds %v (%v), want the socket only", ents, err)
	}

	// An existing directory keeps its mode; the socket still gets its own.
	dir2 := t.TempDir()
	if err := os.Chmod(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	sock2 := filepath.Join(dir2, "rumor.sock")
	ln2, err := httpapi.ListenUnixPerm(sock2, rpc.Perm{Mode: 0o640, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if fi, err := os.Stat(sock2); err != nil || fi.Mode().Perm() != 0o640 || int(fi.Sys().(*syscall.Stat_t).Gid) != os.Getegid() {
		t.Errorf("socket in an existing directory: %v, %v; want mode 0640 in group %d", fi.Mode(), err, os.Getegid())
	}
	if fi, err := os.Stat(dir2); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("existing directory: %v, %v; want it left 0700", fi.Mode(), err)
	}
	if ok, err := httpapi.GroupCanReach(dir2, -1); err != nil || ok {
		t.Errorf("GroupCanReach(a 0700 directory) = %v, %v; want false", ok, err)
	}

	// A mode with bits for others is refused, and nothing is created.
	for _, m := range []os.FileMode{0o666, 0o601, 0o1660} {
		p := filepath.Join(t.TempDir(), "x", "rumor.sock")
		if _, err := httpapi.ListenUnixPerm(p, rpc.Perm{Mode: m, GID: -1}); err == nil || !strings.Contains(err.Error(), "only owner and group bits") {
			t.Errorf("mode %04o: err %v, want a refusal", uint32(m), err)
		}
		if _, err := os.Stat(filepath.Dir(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mode %04o: the directory was created (%v)", uint32(m), err)
		}
	}
}

// TestClientSocketDenied checks that a Client the socket's permissions keep
// out returns a SocketDeniedError naming the socket (as root, whom
// permissions do not stop, it checks nothing and says so).
func TestClientSocketDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root connects whatever the socket's mode; cli TestDeniedMessage covers the message")
	}
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnixPerm(sock, rpc.Perm{Mode: 0o600, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(sock, 0); err != nil {
		t.Fatal(err)
	}
	_, err = rpc.NewClient(sock).Status(ctxT(t))
	var sd *rpc.SocketDeniedError
	if !errors.As(err, &sd) || sd.Path != sock || !errors.Is(err, syscall.EACCES) || !errors.Is(err, rpc.ErrAgentUnreachable) {
		t.Fatalf("err %v, want a SocketDeniedError for %s", err, sock)
	}
}
