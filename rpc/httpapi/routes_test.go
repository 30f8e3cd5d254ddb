package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// TestQueueRoutes: submit, take, touch, state, a session take and the
// task list, through the Client.
func TestQueueRoutes(t *testing.T) {
	a := startAgent(t, nil)
	c, ctx := a.client, ctxT(t)
	sub := check(c.TaskSubmit(ctx, "thumbs", rpc.TaskSubmit{ID: "j1", Payload: []byte("img/1.png"), Priority: 5})).must(t)
	if sub.State != "queued" || sub.Queue != "thumbs" || string(sub.Payload) != "img/1.png" {
		t.Fatalf("TaskSubmit = %+v", sub)
	}
	if _, err := c.TaskSubmit(ctx, "thumbs", rpc.TaskSubmit{ID: "j1"}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("TaskSubmit of an existing id: %v, want denied", err)
	}
	check(c.TaskSubmit(ctx, "thumbs", rpc.TaskSubmit{ID: "j2"})).must(t)

	took := check(c.TaskTake(ctx, "thumbs", rpc.TaskTake{VisibilityMillis: 60000})).must(t)
	if !took.Taken || took.Task == nil || took.Task.ID != "j1" || took.Task.State != "running" {
		t.Fatalf("TaskTake = %+v, want j1 running", took)
	}
	touched := check(c.TaskTouch(ctx, "j1", rpc.TaskTouch{VisibilityMillis: 60000})).must(t)
	if touched.ID != "j1" || touched.State != "running" {
		t.Errorf("TaskTouch = %+v", touched)
	}
	if _, err := c.TaskTouch(ctx, "nope", rpc.TaskTouch{}); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("TaskTouch of no task: %v, want not_found", err)
	}
	if _, err := c.TaskTouch(ctx, "j2", rpc.TaskTouch{}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Errorf("TaskTouch of a queued task: %v, want denied", err)
	}
	check(c.TaskUpdate(ctx, "j1", rpc.TaskUpdate{State: "done", Result: "ok"})).must(t)

	// A session take: granted with j2, and j2 is queued again once the
	// client leaves.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	granted := make(chan rpc.SessionEvent, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.TaskTakeSession(sctx, "thumbs", rpc.TaskTake{VisibilityMillis: 30000}, func(ev rpc.SessionEvent) error {
			granted <- ev
			return nil
		})
	}()
	ev := next(t, granted)
	if ev.Event != rpc.SessionGranted || ev.Task == nil || ev.Task.ID != "j2" || ev.Session == "" {
		t.Fatalf("session take: %+v, want granted with j2", ev)
	}
	cancel()
	if err := next(t, done); err != nil {
		t.Fatalf("session take after cancel: %v", err)
	}
	waitFor(t, "j2 to be queued again", func() bool {
		got, err := c.TaskGet(ctx, "j2")
		return err == nil && got.State == "queued"
	})

	// Nothing to take: taken false, and a session is denied.
	check(c.TaskUpdate(ctx, "j2", rpc.TaskUpdate{State: "cancelled"})).must(t)
	if r := check(c.TaskTake(ctx, "thumbs", rpc.TaskTake{})).must(t); r.Taken {
		t.Errorf("TaskTake of an empty queue = %+v", r)
	}
	var events []string
	err := c.TaskTakeSession(ctx, "thumbs", rpc.TaskTake{}, func(ev rpc.SessionEvent) error {
		events = append(events, ev.Event)
		return nil
	})
	if err != nil || !slices.Equal(events, []string{rpc.SessionDenied}) {
		t.Errorf("session take of an empty queue: %v %v, want [denied]", events, err)
	}
	list := check(c.TaskList(ctx, rpc.TaskFilter{Queue: "thumbs", State: "done"})).must(t)
	if len(list) != 1 || list[0].ID != "j1" || list[0].Result != "ok" {
		t.Errorf("TaskList(thumbs, done) = %+v", list)
	}
}

// debugAPI is a Fake that explains keys and serves backups.
type debugAPI struct {
	*rpctest.Fake
	snapshot []byte
}

func (d debugAPI) Records(ctx context.Context, prefix string) ([]rpc.Record, error) {
	return []rpc.Record{{Key: prefix + "w1", Op: "put", Node: testNode, HLC: 1 << 40, Stamp: "1.0", Value: []byte(`{"status":"up"}`)}}, nil
}

func (d debugAPI) Explain(ctx context.Context, key string) (rpc.Explanation, error) {
	if key == "" {
		return rpc.Explanation{}, rpc.BadRequest("key: want a key such as svc/web/w1")
	}
	return rpc.Explanation{
		Key: key, Rule: "last writer wins", Verdict: "the write of " + testNode + " won",
		Records: []rpc.ExplainedRecord{{Record: rpc.Record{Key: key, Op: "put", Node: testNode, HLC: 7, Stamp: "0.7"}, Why: "the only write"}},
	}, nil
}

func (d debugAPI) Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) (int64, error) {
	w, err := begin(int64(len(d.snapshot)))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(d.snapshot)
	return int64(n), err
}

// TestDebugRoutes: records, explain and backup, through the Client.
func TestDebugRoutes(t *testing.T) {
	api := debugAPI{Fake: rpctest.New(testNode, nil), snapshot: bytes.Repeat([]byte("state"), 1000)}
	a := startAgent(t, api)
	c, ctx := a.client, ctxT(t)

	recs := check(c.Records(ctx, "svc/web/")).must(t)
	if len(recs) != 1 || recs[0].Key != "svc/web/w1" || string(recs[0].Value) != `{"status":"up"}` {
		t.Errorf("Records = %+v", recs)
	}
	ex := check(c.Explain(ctx, "svc/web/w1")).must(t)
	if ex.Key != "svc/web/w1" || len(ex.Records) != 1 || ex.Records[0].Why != "the only write" {
		t.Errorf("Explain = %+v", ex)
	}
	if _, err := c.Explain(ctx, ""); rpc.CodeOf(err) != rpc.CodeBadRequest {
		t.Errorf("Explain of no key: %v, want bad_request", err)
	}
	var buf bytes.Buffer
	n, err := c.Backup(ctx, &buf)
	if err != nil || n != int64(len(api.snapshot)) || !bytes.Equal(buf.Bytes(), api.snapshot) {
		t.Errorf("Backup = %d bytes, %v", n, err)
	}

	// The plain Fake explains nothing and serves no backups.
	b := startAgent(t, nil)
	if _, err := b.client.Explain(ctx, "svc/web/w1"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("Explain of an unknown key: %v, want not_found", err)
	}
	if _, err := b.client.Backup(ctx, io.Discard); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("Backup from an API without backups: %v, want not_found", err)
	}
}

// rawDo sends a request on the socket and returns the status, the headers
// and the decoded error body.
func rawDo(t *testing.T, sock, method, path, body string) (int, http.Header, rpc.Error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, "http://rumor"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rawClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e rpc.Error
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q %q: want a JSON error", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	return resp.StatusCode, resp.Header, e
}

// TestErrorShape: the errors the server makes itself (no route, a method
// the route lacks) are JSON errors like the API's, and so are the API's
// denials.
func TestErrorShape(t *testing.T) {
	a := startAgent(t, nil)
	for _, path := range []string{"/v1/nope", "/v2/status", "/", "/v1/svc/web/w1/extra"} {
		code, _, e := rawDo(t, a.sock, http.MethodGet, path, "")
		if code != http.StatusNotFound || e.Code != rpc.CodeNotFound || !strings.Contains(e.Message, "no route GET "+path) {
			t.Errorf("GET %s: %d %+v, want 404 not_found naming the route", path, code, e)
		}
	}
	code, h, e := rawDo(t, a.sock, http.MethodPatch, "/v1/svc/web/w1", `{}`)
	allow, _ := e.Details["allow"].([]any)
	if code != http.StatusMethodNotAllowed || e.Code != rpc.CodeMethodNotAllowed || !strings.Contains(h.Get("Allow"), "PUT") || len(allow) < 3 {
		t.Errorf("PATCH /v1/svc/web/w1: %d %v %+v, want 405 method_not_allowed with Allow", code, h.Get("Allow"), e)
	}
	if code, _, e := rawDo(t, a.sock, http.MethodDelete, "/v1/status", ""); code != http.StatusMethodNotAllowed || e.Code != rpc.CodeMethodNotAllowed {
		t.Errorf("DELETE /v1/status: %d %+v, want 405", code, e)
	}

	// An instance another node owns: 409 denied, through the Client too.
	a.fake.PutService(rpc.Service{Service: "web", Instance: "w9", Status: "up", Owner: "another-node"})
	if code, _, e := rawDo(t, a.sock, http.MethodPut, "/v1/svc/web/w9", `{"status":"down"}`); code != http.StatusConflict || e.Code != rpc.CodeDenied {
		t.Errorf("PUT of another node's instance: %d %+v, want 409 denied", code, e)
	}
	_, err := a.client.ServiceSet(ctxT(t), "web", "w9", rpc.ServiceSet{Status: "down"})
	var re *rpc.Error
	if !errors.As(err, &re) || re.Code != rpc.CodeDenied || re.Message == "" {
		t.Errorf("ServiceSet of another node's instance: %v, want denied", err)
	}
}

// TestErrorDetails: the limits' errors carry their figures in details, and
// the Client keeps them.
func TestErrorDetails(t *testing.T) {
	l := startLimited(t, httpapi.Options{MaxWatchers: 1, RequestTimeout: 50 * time.Millisecond})
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, done := collect(wctx, l.client, "")
	if err := l.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// A session is a stream too: refused past max_watchers.
	err := l.client.KernelSession(ctx, "gpu", rpc.KernelClaim{}, func(rpc.SessionEvent) error { return nil })
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeBusy || e.Details["limit"] != float64(1) || e.Details["open"] != float64(1) {
		t.Errorf("session past max_watchers: %#v, want busy with limit and open", err)
	}
	err = l.client.TaskTakeSession(ctx, "q", rpc.TaskTake{}, func(rpc.SessionEvent) error { return nil })
	if rpc.CodeOf(err) != rpc.CodeBusy {
		t.Errorf("task session past max_watchers: %v, want busy", err)
	}
	cancel()
	if err := next(t, done); err != nil {
		t.Fatal(err)
	}

	l.fake.SetHook("KernelGet", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	_, err = l.client.KernelGet(ctx, "gpu")
	if !errors.As(err, &e) || e.Code != rpc.CodeTimeout || e.Details["request_timeout_ms"] != float64(50) {
		t.Errorf("request past request_timeout: %#v, want timeout with request_timeout_ms", err)
	}
}

// TestLegacyErrorShape: the Client reads the error of an agent from before
// the "message" field, which sent it as "error".
func TestLegacyErrorShape(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"code":"denied","error":"old agent says no"}`+"\n")
	})
	mux.HandleFunc("GET /v1/watch", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, `{"op":"synced","cursor":"g-1"}`+"\n"+`{"code":"busy","error":"old agent is busy"}`+"\n")
	})
	sock := serveHandler(t, mux)
	c := rpc.NewClient(sock)
	defer c.Close()
	_, err := c.Status(ctxT(t))
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != rpc.CodeDenied || e.Message != "old agent says no" {
		t.Errorf("legacy error: %#v", err)
	}
	err = c.Watch(ctxT(t), rpc.WatchRequest{}, func(rpc.Event) error { return nil })
	if !errors.As(err, &e) || e.Code != rpc.CodeBusy || e.Message != "old agent is busy" {
		t.Errorf("legacy stream error: %#v", err)
	}
}

// serveHandler serves h on a Unix socket until the test ends and returns
// the socket's path: another server than rumor's, or an older agent.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return sock
}

// TestKVRoutes: put, get, list, delete and history of kv keys, through
// the Client, with the version checks.
func TestKVRoutes(t *testing.T) {
	a := startAgent(t, nil)
	c, ctx := a.client, ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, done := collect(wctx, c, "kv/")
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	zero := uint64(0)
	put := check(c.KVPut(ctx, "/config/app/env name", rpc.KVPut{Value: "prod", IfVersion: &zero})).must(t)
	if put.Version != 1 || put.Key != "/config/app/env name" || put.Value != "prod" {
		t.Fatalf("KVPut = %+v", put)
	}
	if ev := next(t, events); ev.Op != "put" || ev.Key != "kv/config/app/env name" {
		t.Errorf("watch line after the put: %+v", ev)
	}
	cancel()
	if err := next(t, done); err != nil {
		t.Errorf("watch: %v", err)
	}
	if _, err := c.KVPut(ctx, "/config/app/env name", rpc.KVPut{Value: "dev", IfVersion: &zero}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Errorf("KVPut with a stale if_version: %v, want denied", err)
	}
	check(c.KVPut(ctx, "/config/app/port", rpc.KVPut{Value: "8080", TTLMillis: 60000})).must(t)
	if got := check(c.KVGet(ctx, "/config/app/env name")).must(t); got.Value != "prod" || got.Version != 1 {
		t.Errorf("KVGet = %+v", got)
	}
	if _, err := c.KVGet(ctx, "/config/none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("KVGet of no key: %v, want not_found", err)
	}
	if l := check(c.KVList(ctx, "/config/app/")).must(t); len(l) != 2 || l[0].Key != "/config/app/env name" {
		t.Errorf("KVList = %+v", l)
	}
	stale := uint64(7)
	if _, err := c.KVDelete(ctx, "/config/app/port", &stale); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Errorf("KVDelete with a stale if_version: %v, want denied", err)
	}
	one := uint64(1)
	if del := check(c.KVDelete(ctx, "/config/app/port", &one)).must(t); !del.Deleted || del.Version != 2 {
		t.Errorf("KVDelete = %+v", del)
	}
	h := check(c.KVHistory(ctx, "/config/app/port")).must(t)
	if len(h) != 2 || !h[0].Current || !h[0].Deleted || h[1].Value != "8080" {
		t.Errorf("KVHistory = %+v", h)
	}
	if _, err := c.KVHistory(ctx, "/config/none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("KVHistory of no key: %v, want not_found", err)
	}
	if code, _, e := rawDo(t, a.sock, http.MethodDelete, "/v1/kv/config/app/env%20name?if_version=x", ""); code != http.StatusBadRequest || e.Code != rpc.CodeBadRequest {
		t.Errorf("if_version=x: %d %+v, want 400", code, e)
	}
}
