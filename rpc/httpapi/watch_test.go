package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// resumingAPI serves watches from a fixed list of cursored events: a
// watch resumes after its Since and, the first time, breaks after two.
type resumingAPI struct {
	*rpctest.Fake
	mu   sync.Mutex
	reqs []rpc.WatchRequest
}

func (r *resumingAPI) Watch(ctx context.Context, req rpc.WatchRequest, fn func(rpc.Event) error) error {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	first := len(r.reqs) == 1
	r.mu.Unlock()
	start := 0
	if req.Since != "" {
		if _, err := fmt.Sscanf(req.Since, "g-%d", &start); err != nil {
			return rpc.BadRequest("since %q", req.Since)
		}
	}
	for i := start + 1; i <= 5; i++ {
		if err := fn(rpc.Event{Key: fmt.Sprint("k/", i), Op: "put", Cursor: fmt.Sprint("g-", i)}); err != nil {
			return err
		}
		if first && i == 2 {
			return errors.New("agent stopping") // an internal error: worth a reconnect
		}
	}
	return rpc.Denied("that is all") // a refusal: not retried
}

// TestClientWatchReconnectsWithTheLastCursor: a stream that breaks is
// opened again with since = the last cursor, so fn sees every event once.
func TestClientWatchReconnectsWithTheLastCursor(t *testing.T) {
	api := &resumingAPI{Fake: rpctest.New(testNode, nil)}
	a := startAgent(t, api)
	var got []string
	err := a.client.Watch(ctxT(t), rpc.WatchRequest{Prefix: "k/", Keepalive: 250 * time.Millisecond, Reconnect: 3}, func(ev rpc.Event) error {
		got = append(got, ev.Cursor)
		return nil
	})
	if rpc.CodeOf(err) != rpc.CodeDenied {
		t.Fatalf("Watch = %v, want the final refusal", err)
	}
	equal(t, "cursors", got, []string{"g-1", "g-2", "g-3", "g-4", "g-5"})
	api.mu.Lock()
	defer api.mu.Unlock()
	equal(t, "requests", api.reqs, []rpc.WatchRequest{
		{Prefix: "k/", Keepalive: 250 * time.Millisecond},
		{Prefix: "k/", Since: "g-2", Keepalive: 250 * time.Millisecond},
	})

	// Without Reconnect the break ends the watch.
	api.reqs = nil
	api.mu.Unlock()
	got = nil
	err = a.client.Watch(ctxT(t), rpc.WatchRequest{Prefix: "k/", Keepalive: -1}, func(ev rpc.Event) error {
		got = append(got, ev.Cursor)
		return nil
	})
	api.mu.Lock()
	if rpc.CodeOf(err) != rpc.CodeInternal || len(got) != 2 {
		t.Fatalf("Watch without reconnect = %v after %v", err, got)
	}
	equal(t, "request", api.reqs, []rpc.WatchRequest{{Prefix: "k/", Keepalive: -1}})
}

// TestWatchKeepaliveParameter: ?keepalive= takes a duration or seconds, 0
// for none; too short is refused before the stream starts.
func TestWatchKeepaliveParameter(t *testing.T) {
	api := &resumingAPI{Fake: rpctest.New(testNode, nil)}
	a := startAgent(t, api)
	for _, c := range []struct {
		q    string
		want time.Duration
	}{{"", 0}, {"&keepalive=0", -1}, {"&keepalive=2", 2 * time.Second}, {"&keepalive=1.5s", 1500 * time.Millisecond}} {
		api.mu.Lock()
		api.reqs = nil
		api.mu.Unlock()
		resp := get(t, a.sock, "/v1/watch?prefix=k/&since=g-4"+c.q)
		resp.Body.Close()
		api.mu.Lock()
		if len(api.reqs) != 1 || api.reqs[0].Keepalive != c.want || api.reqs[0].Since != "g-4" {
			t.Errorf("%q: requests %+v, want keepalive %v", c.q, api.reqs, c.want)
		}
		api.mu.Unlock()
	}
	for _, q := range []string{"&keepalive=10ms", "&keepalive=soon"} {
		resp := get(t, a.sock, "/v1/watch?prefix=k/"+q)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%q: status %d, want 400", q, resp.StatusCode)
		}
	}
}

func get(t *testing.T, sock, path string) *http.Response {
	t.Helper()
	resp, err := rawClient(sock).Get("http://rumor" + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // the whole stream: the API has run
	return resp
}
