// Package contract checks the local API's HTTP traffic against its OpenAPI
// document (rpc/httpapi/openapi.yaml). The tests of the rpc and cli packages serve
// their agents through a Checker's Middleware: every request they make and
// every answer they get is validated against the document, and the Checker
// counts which routes and statuses the tests exercised.
//
// The rules: a request the document refuses must be refused by the server
// (a 4xx error); every answer must be one the document gives for its route
// and status, byte for byte (an NDJSON stream line by line, each line
// against the stream's line schema); every error answer is an Error whose
// code maps to its status; and the server's routes and the document's are
// the same set (Mismatches).
package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

// Run runs a test binary's tests (m.Run) with c checking their API
// traffic, for a TestMain: it prints c's coverage table with -v, fails on
// a contract failure seen after its test ended and, when requireAll is set
// and every test ran (no -run or -skip), on a route the tests never
// exercised. It returns the exit code for os.Exit.
func (c *Checker) Run(m *testing.M, requireAll bool) int {
	code := m.Run()
	if testing.Verbose() {
		c.WriteCoverage(os.Stdout)
	}
	for _, f := range c.Late() {
		fmt.Fprintln(os.Stderr, "FAIL:", f)
		code = 1
	}
	if requireAll && code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		if missed := c.Unexercised(); len(missed) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: API contract: the tests never exercised these routes: %v\n", missed)
			code = 1
		}
	}
	return code
}

// NoRoute is the route under which Coverage counts requests no route of the
// server takes (answered 404 or 405).
const NoRoute = "(no route)"

// ndjson is the media type of the API's streams.
const ndjson = "application/x-ndjson"

// Checker validates traffic against the OpenAPI document and records what
// it saw. It is safe for concurrent use.
type Checker struct {
	doc         *openapi3.T
	ops         map[string]*operation // by server pattern
	mux         *http.ServeMux        // the server's patterns, to match requests
	mismatches  []string
	errorSchema *openapi3.Schema

	mu   sync.Mutex
	hits map[string]map[int]int // pattern -> status -> count
	late []string               // failures seen after their test ended
}

// operation is one route: its server pattern and the document's operation.
type operation struct {
	pattern   string
	wildcards []string
	route     *routers.Route
}

// wildcard matches a ServeMux pattern's wildcard, {name} or {name...}.
var wildcard = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// New loads the API's OpenAPI document (httpapi.OpenAPI) and matches it with
// routes, the server's ServeMux patterns (httpapi.Server.Routes). It fails only
// if the document does not load or is not valid OpenAPI; routes that the
// two do not share are reported by Mismatches.
func New(routes []string) (*Checker, error) {
	b, err := httpapi.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("contract: load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("contract: the OpenAPI document is not valid: %w", err)
	}
	es := doc.Components.Schemas["Error"]
	if es == nil || es.Value == nil {
		return nil, errors.New("contract: the OpenAPI document has no Error schema")
	}
	c := &Checker{
		doc:         doc,
		ops:         map[string]*operation{},
		mux:         http.NewServeMux(),
		errorSchema: es.Value,
		hits:        map[string]map[int]int{},
	}
	served := map[string]bool{}
	for _, p := range routes {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			c.mismatches = append(c.mismatches, fmt.Sprintf("server route %q has no method", p))
			continue
		}
		var names []string
		for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
			names = append(names, m[1])
		}
		specPath := wildcard.ReplaceAllString(path, "{$1}")
		served[method+" "+specPath] = true
		item := doc.Paths.Value(specPath)
		var op *openapi3.Operation
		if item != nil {
			op = item.GetOperation(method)
		}
		if op == nil {
			c.mismatches = append(c.mismatches, fmt.Sprintf("the server serves %s, the OpenAPI document lacks it", p))
			continue
		}
		o := &operation{pattern: p, wildcards: names, route: &routers.Route{
			Spec: doc, Path: specPath, PathItem: item, Method: method, Operation: op,
		}}
		c.ops[p] = o
		c.mux.Handle(p, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			if m, ok := r.Context().Value(matchKey{}).(*match); ok {
				m.op = o
				m.params = map[string]string{}
				for _, n := range o.wildcards {
					m.params[n] = r.PathValue(n)
				}
			}
		}))
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			if !served[method+" "+path] {
				c.mismatches = append(c.mismatches, fmt.Sprintf("the OpenAPI document has %s %s, the server lacks it", method, path))
			}
		}
	}
	slices.Sort(c.mismatches)
	return c, nil
}

// Mismatches lists the routes the server and the document do not share.
func (c *Checker) Mismatches() []string { return slices.Clone(c.mismatches) }

type matchKey struct{}

// match is the route a request takes, found by the server's patterns.
type match struct {
	op     *operation
	params map[string]string
}

// route returns the operation r takes and its path parameters, or nil if no
// route takes it.
func (c *Checker) route(r *http.Request) *match {
	m := &match{}
	rr := r.Clone(context.WithValue(r.Context(), matchKey{}, m))
	rr.Body = http.NoBody
	c.mux.ServeHTTP(discard{header: http.Header{}}, rr)
	if m.op == nil {
		return nil
	}
	return m
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// Middleware returns a middleware (httpapi.Options.Middleware) that validates
// every request it serves and its answer, reporting failures with t.Errorf
// while t's test runs and, after it ended, to Late.
func (c *Checker) Middleware(t testing.TB) func(http.Handler) http.Handler {
	rep := &reporter{c: c, t: t}
	t.Cleanup(rep.end) // after the cleanups that stop the server
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.serve(rep, next, w, r)
		})
	}
}

// Wrap returns h wrapped by Middleware(t), for a handler served by hand.
func (c *Checker) Wrap(t testing.TB, h http.Handler) http.Handler { return c.Middleware(t)(h) }

// reporter sends failures to a test while it runs.
type reporter struct {
	c    *Checker
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (r *reporter) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
}

func (r *reporter) errorf(format string, args ...any) {
	msg := "API contract: " + fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.t.Errorf("%s", msg)
		return
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	r.c.late = append(r.c.late, r.t.Name()+": "+msg)
}

// Late returns the failures seen after the test that served them had ended
// (a handler that outlived its test).
func (c *Checker) Late() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.late)
}

func (c *Checker) serve(rep *reporter, next http.Handler, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rep.errorf("%s %s: read the request body: %v", r.Method, r.URL, err)
		return
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))

	m := c.route(r)
	var reqErr error
	var in *openapi3filter.RequestValidationInput
	if m != nil {
		vr := r.Clone(context.Background())
		vr.Body = io.NopCloser(bytes.NewReader(body))
		if len(body) > 0 && vr.Header.Get("Content-Type") == "" {
			// The agent reads a body as JSON whatever its Content-Type.
			vr.Header.Set("Content-Type", "application/json")
		}
		in = &openapi3filter.RequestValidationInput{
			Request:    vr,
			PathParams: m.params,
			Route:      m.op.route,
			Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		reqErr = openapi3filter.ValidateRequest(context.Background(), in)
	}

	rec := &recorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	status := rec.code()
	pattern := NoRoute
	if m != nil {
		pattern = m.op.pattern
	}
	c.count(pattern, status)

	what := fmt.Sprintf("%s %s -> %d", r.Method, r.URL.RequestURI(), status)
	if status >= 400 {
		if err := c.checkError(status, rec.header, rec.body.Bytes()); err != nil {
			rep.errorf("%s: %v", what, err)
		}
	}
	if m == nil {
		switch status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized,
			http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			rep.errorf("%s: no route takes the request, yet it was answered %d", what, status)
		}
		return
	}
	if reqErr != nil && status < 400 {
		rep.errorf("%s: the OpenAPI document refuses the request, the server accepted it: %v", what, reqErr)
	}
	if err := c.checkResponse(in, status, rec.header, rec.body.Bytes()); err != nil {
		rep.errorf("%s: %v", what, err)
	}
}

// checkError checks that an error answer is an Error whose code maps to
// status.
func (c *Checker) checkError(status int, h http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("error answer with Content-Type %q, want application/json: %q", h.Get("Content-Type"), body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %v: %q", err, body)
	}
	if err := c.errorSchema.VisitJSON(v); err != nil {
		return fmt.Errorf("error answer does not match the Error schema: %v: %s", err, body)
	}
	var e rpc.Error
	_ = json.Unmarshal(body, &e)
	if e.HTTPStatus() != status {
		return fmt.Errorf("error code %q means %d, answered with %d", e.Code, e.HTTPStatus(), status)
	}
	return nil
}

// checkResponse validates an answer against its operation.
func (c *Checker) checkResponse(in *openapi3filter.RequestValidationInput, status int, h http.Header, body []byte) error {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	opts := &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: mt == ndjson}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 h,
		Options:                opts,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	if mt != ndjson {
		return nil
	}
	resp := in.Route.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("status %d is not documented", status)
	}
	media := resp.Value.Content.Get(ndjson)
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return fmt.Errorf("answered %s, which the document does not give for %d", ndjson, status)
	}
	return checkLines(media.Schema.Value, body)
}

// checkLines validates each line of an NDJSON body against the line schema.
func checkLines(schema *openapi3.Schema, body []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("stream line %d is not JSON: %v: %q", n, err, line)
		}
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("stream line %d is not a JSON object: %q", n, line)
		}
		if err := schema.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
			return fmt.Errorf("stream line %d does not match the line schema: %v: %s", n, err, line)
		}
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return fmt.Errorf("stream does not end with a whole line: %q", body[max(0, len(body)-80):])
	}
	return sc.Err()
}

func (c *Checker) count(pattern string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hits[pattern] == nil {
		c.hits[pattern] = map[int]int{}
	}
	c.hits[pattern][status]++
}

// Coverage returns, for each route (a server pattern, or NoRoute), the
// statuses its answers had and how many of each.
func (c *Checker) Coverage() map[string]map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[int]int, len(c.hits))
	for p, s := range c.hits {
		out[p] = maps.Clone(s)
	}
	return out
}

// Unexercised lists the routes (server patterns the document has too) no
// request took.
func (c *Checker) Unexercised() []string {
	cov := c.Coverage()
	var out []string
	for p := range c.ops {
		if len(cov[p]) == 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// WriteCoverage writes the coverage table: per route, the statuses the
// document gives, each marked with how many answers had it, and any
// status seen that the document lacks.
func (c *Checker) WriteCoverage(w io.Writer) {
	cov := c.Coverage()
	patterns := slices.Sorted(maps.Keys(c.ops))
	fmt.Fprintf(w, "API contract coverage (route: status=answers, - for a documented status never seen):\n")
	routes, pairs, seen := 0, 0, 0
	for _, p := range patterns {
		var cells []string
		documented := map[int]bool{}
		for _, code := range documentedStatuses(c.ops[p].route.Operation) {
			documented[code] = true
			pairs++
			if n := cov[p][code]; n > 0 {
				seen++
				cells = append(cells, fmt.Sprintf("%d=%d", code, n))
			} else {
				cells = append(cells, fmt.Sprintf("%d=-", code))
			}
		}
		for _, code := range slices.Sorted(maps.Keys(cov[p])) {
			if !documented[code] {
				cells = append(cells, fmt.Sprintf("%d=%d(undocumented)", code, cov[p][code]))
			}
		}
		if len(cov[p]) > 0 {
			routes++
		}
		fmt.Fprintf(w, "  %-36s %s\n", p, strings.Join(cells, " "))
	}
	if n := cov[NoRoute]; len(n) > 0 {
		var cells []string
		for _, code := range slices.Sorted(maps.Keys(n)) {
			cells = append(cells, fmt.Sprintf("%d=%d", code, n[code]))
		}
		fmt.Fprintf(w, "  %-36s %s\n", NoRoute, strings.Join(cells, " "))
	}
	fmt.Fprintf(w, "routes exercised: %d of %d; documented (route, status) pairs seen: %d of %d\n", routes, len(patterns), seen, pairs)
}

// documentedStatuses returns the statuses op documents, in order.
func documentedStatuses(op *openapi3.Operation) []int {
	var out []int
	for k := range op.Responses.Map() {
		var code int
		if _, err := fmt.Sscanf(k, "%d", &code); err == nil {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}

// recorder passes an answer through and keeps a copy: its status, its
// headers as sent, and its body.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// FlushError flushes the answer (http.ResponseController).
func (r *recorder) FlushError() error {
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the ResponseWriter it wraps (http.ResponseController).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// code returns the answer's status; a handler that wrote nothing answered
// 200.
func (r *recorder) code() int {
	if r.status == 0 {
		r.status, r.header = http.StatusOK, r.ResponseWriter.Header().Clone()
	}
	return r.status
}
