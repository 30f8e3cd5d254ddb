package contract_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rumor-dev/rumor/rpc/contract"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

// recTB records the failures a Checker reports instead of failing the
// test.
type recTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recTB) Cleanup(fn func()) { r.cleanups = append(r.cleanups, fn) }

func (r *recTB) Name() string { return "rec" }

func routes() []string { return httpapi.New(nil, nil).Routes() }

// answer returns a handler that answers status, contentType and body.
func answer(status int, contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

const kernel = `{"id":"k","epoch":1,"live":true,"origin":"n","stamp":"1.0","age_ms":0,"origin_state":"alive"}`

// TestChecks: each rule of the contract catches what breaks it, and lets
// through what keeps it.
func TestChecks(t *testing.T) {
	c, err := contract.New(routes())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target, body string
		h                          http.Handler
		want                       string // in the failure; "" for none
	}{
		{"good status", "GET", "/v1/status", "", answer(200, "application/json",
			`{"node":"n","cluster":"c","version":"v","addrs":[],"peers":0,"keys":0,"watchers":0,"deltas_in":0,"deltas_out":0,"unflushed":0,"anti_entropy":{"rounds":0,"repaired":0,"refused":0,"failed":0},"peers_refused":0,"started":"2026-01-02T03:04:05Z"}`), ""},
		{"wrong body", "GET", "/v1/status", "", answer(200, "application/json", `{"node":1}`), "doesn't match schema"},
		{"undocumented field", "GET", "/v1/kernel/k", "", answer(200, "application/json", strings.Replace(kernel, `"id"`, `"color":"red","id"`, 1)), "doesn't match schema"},
		{"undocumented status", "GET", "/v1/status", "", answer(404, "application/json", `{"code":"not_found","message":"x"}`), "status is not supported"},
		{"old error shape", "GET", "/v1/svc/a/b", "", answer(404, "application/json", `{"code":"not_found","error":"x"}`), "Error schema"},
		{"code and status disagree", "GET", "/v1/svc/a/b", "", answer(404, "application/json", `{"code":"denied","message":"x"}`), "means 409"},
		{"text error", "GET", "/v1/svc/a/b", "", answer(404, "text/plain", "404 page not found"), "Content-Type"},
		{"invalid request accepted", "PUT", "/v1/bl/l/i", `{"bogus":1}`, answer(200, "application/json",
			`{"list":"l","id":"i","added_by":"n","added":"2026-01-02T03:04:05Z","origin":"n","stamp":"1.0","age_ms":0,"origin_state":"alive"}`), "refuses the request"},
		{"invalid request refused", "PUT", "/v1/bl/l/i", `{"bogus":1}`, answer(400, "application/json", `{"code":"bad_request","message":"unknown field"}`), ""},
		{"good stream", "POST", "/v1/kernel/k/session", "{}", answer(200, "application/x-ndjson",
			`{"event":"granted","session":"s","kernel":`+kernel+"}\n"+`{"code":"internal","message":"gone"}`+"\n"), ""},
		{"bad stream line", "POST", "/v1/kernel/k/session", "{}", answer(200, "application/x-ndjson", `{"event":"nope","kernel":`+kernel+"}\n"), "stream line 1"},
		{"half a line", "GET", "/v1/watch", "", answer(200, "application/x-ndjson", `{"op":"synced","cursor":"g-1"}`), "whole line"},
		{"no route, JSON 404", "GET", "/v1/nope", "", answer(404, "application/json", `{"code":"not_found","message":"no route"}`), ""},
		{"no route answered 200", "GET", "/v1/nope", "", answer(200, "application/json", `{}`), "no route takes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recTB{TB: t}
			req := httptest.NewRequest(tc.method, "http://rumor"+tc.target, strings.NewReader(tc.body))
			c.Wrap(rec, tc.h).ServeHTTP(httptest.NewRecorder(), req)
			got := strings.Join(rec.errs, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("want no failure, got:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("want a failure with %q, got:\n%s", tc.want, got)
			}
		})
	}
	cov := c.Coverage()
	if cov["GET /v1/status"][200] != 2 || cov["GET /v1/status"][404] != 1 || cov[contract.NoRoute][404] != 1 {
		t.Errorf("coverage: %v", cov)
	}
	if missed := c.Unexercised(); slices.Contains(missed, "GET /v1/status") || !slices.Contains(missed, "GET /v1/members") {
		t.Errorf("unexercised: %v", missed)
	}
}

// TestMismatches: a route the server has and the document lacks, and one
// the document has and the server lacks, are both named.
func TestMismatches(t *testing.T) {
	rs := slices.DeleteFunc(routes(), func(p string) bool { return p == "GET /v1/members" })
	c, err := contract.New(append(rs, "GET /v1/extra/{id...}"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"the OpenAPI document has GET /v1/members, the server lacks it",
		"the server serves GET /v1/extra/{id...}, the OpenAPI document lacks it",
	}
	if got := c.Mismatches(); !slices.Equal(got, want) {
		t.Errorf("Mismatches = %q, want %q", got, want)
	}
	c, err = contract.New(routes())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Mismatches(); len(got) != 0 {
		t.Errorf("the server's own routes: %q", got)
	}
}
