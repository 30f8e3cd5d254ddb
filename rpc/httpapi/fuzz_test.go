package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// fuzzMaxBody is the request bound FuzzServerRequest serves with, small so
// that oversized bodies are cheap to reach.
const fuzzMaxBody = 4096

// FuzzServerRequest sends arbitrary requests (method, path with query,
// body) to the server's decoding and routing in front of a Fake API. The
// server must never panic or answer 5xx to input, however malformed or
// large: bad input is the client's fault (4xx), and a 400 carries a JSON
// error with a message.
func FuzzServerRequest(f *testing.F) {
	f.Add("PUT", "/v1/svc/web/w1", []byte(`{"status":"up","addr":"10.0.0.1:80","tags":{"zone":"a"},"ttl_ms":1000}`))
	f.Add("PUT", "/v1/svc/web/w1", []byte(`{"status":"up","bogus":1}`))
	f.Add("PUT", "/v1/bl/fraud/u1", []byte(`{"reason":"x","ttl_ms":-5}`))
	f.Add("POST", "/v1/task/t1/assign", []byte(`{"node":""}{"node":"x"}`))
	f.Add("POST", "/v1/task/t1/state", []byte(`{"state":"running","result":"\u0000"}`))
	f.Add("POST", "/v1/kernel/k%2F1/claim", []byte(`{"ttl_ms":9223372036854775807,"job":"j"}`))
	f.Add("POST", "/v1/kernel/k1/renew", []byte(`[1,2,3]`))
	f.Add("POST", "/v1/kernel/k1/release", []byte(`null`))
	f.Add("GET", "/v1/svc?service=web&up=maybe", []byte(nil))
	f.Add("GET", "/v1/watch?prefix=svc%2F", []byte(nil))
	f.Add("DELETE", "/v1/bl/%2E%2E/x", []byte(nil))
	f.Add("PUT", "/v1/svc/web/w1", []byte(`{"status":"up","addr":"`+strings.Repeat("a", fuzzMaxBody)+`"}`))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		fake := rpctest.New(testNode, nil)
		srv := httpapi.NewWithOptions(fake, nil, httpapi.Options{MaxRequestBytes: fuzzMaxBody})
		// A stream (a watch, a session) lasts until its client leaves:
		// leave a watch at once, anything else after a second.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if strings.Contains(target, "watch") {
			cancel()
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://rumor"+target, strings.NewReader(string(body)))
		if err != nil {
			return // not a request a client could send
		}
		rec := httptest.NewRecorder()
		apiContract.Wrap(t, srv).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q with %d-byte body: %d %s", method, target, len(body), rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e rpc.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.HTTPStatus() != rec.Code || e.Message == "" ||
				rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s %q: %d without its JSON error: %q", method, target, rec.Code, rec.Body)
			}
		}
		// Only handlers that read a body (PUT, POST) bound it; others ignore
		// it. req.Method, not method: "" means GET.
		if len(body) > fuzzMaxBody && rec.Code/100 == 2 && (req.Method == http.MethodPut || req.Method == http.MethodPost) {
			t.Fatalf("%s %q: %d-byte body over the %d-byte limit accepted (%d)", method, target, len(body), fuzzMaxBody, rec.Code)
		}
	})
}
