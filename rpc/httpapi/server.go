// Package httpapi serves an rpc.API over HTTP: the routes under /v1, the
// Unix socket and its permissions, the bearer token of the loopback TCP
// listener, the NDJSON streams, the one JSON error shape and the OpenAPI
// document that describes all of it (openapi.yaml).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// shutdownTimeout bounds how long Serve waits for requests in flight once its
// context is done, before it closes their connections.
const shutdownTimeout = 5 * time.Second

// Server serves an API over HTTP/JSON; create it with NewServer. Its routes
// (path segments are URL-escaped, non-empty, and may hold any character but
// '/'; the names of new entries must follow NameRule, a blacklist id
// BlacklistIDRule: PUT svc and bl, submit, assign, and kernel claim and
// session check them, while reads, removals and changes of entries held
// already take any segment):
//
//	GET    /v1/status                         Status
//	GET    /v1/members                        []Member
//	GET    /v1/svc?service=S&up=1             []Service
//	PUT    /v1/svc/{service}/{instance}       ServiceSet -> Service
//	GET    /v1/svc/{service}/{instance}       Service
//	DELETE /v1/svc/{service}/{instance}       204
//	GET    /v1/bl                             []BlacklistSummary
//	GET    /v1/bl/{list}                      []BlacklistEntry
//	PUT    /v1/bl/{list}/{id}                 BlacklistAdd -> BlacklistEntry
//	GET    /v1/bl/{list}/{id}                 BlacklistCheck; 404 if absent
//	DELETE /v1/bl/{list}/{id}                 204
//	GET    /v1/kv?prefix=P                    []KVEntry
//	PUT    /v1/kv/{key...}                    KVPut -> KVEntry; 409 on a failed if_version
//	GET    /v1/kv/{key...}                    KVEntry
//	DELETE /v1/kv/{key...}?if_version=V       KVEntry (the delete)
//	GET    /v1/kv-history/{key...}            []KVEntry, newest first
//	GET    /v1/records?prefix=P               []Record
//	GET    /v1/explain?key=K                  Explanation
//	GET    /v1/task?state=S&queue=Q&owner=N   []Task
//	GET    /v1/task/{id}                      Task
//	POST   /v1/task/{id}/assign               TaskAssign -> Task
//	POST   /v1/task/{id}/state                TaskUpdate -> Task
//	POST   /v1/task/{id}/cancel               Task
//	POST   /v1/task/{id}/touch                TaskTouch -> Task
//	POST   /v1/queue/{queue}/submit           TaskSubmit -> Task
//	POST   /v1/queue/{queue}/take             TaskTake -> TakeResult
//	POST   /v1/queue/{queue}/session          TaskTake -> NDJSON stream of SessionEvent
//	GET    /v1/kernel                         []Kernel
//	GET    /v1/kernel/{id}                    Kernel
//	POST   /v1/kernel/{id}/claim              KernelClaim -> ClaimResult
//	POST   /v1/kernel/{id}/renew              KernelRenew -> Kernel
//	POST   /v1/kernel/{id}/release            KernelRelease -> Kernel
//	POST   /v1/kernel/{id}/session            KernelClaim -> NDJSON stream of SessionEvent
//	GET    /v1/watch?prefix=P&since=C&keepalive=D  NDJSON stream of Event
//	GET    /v1/backup                         snapshot of the state (see Backuper)
//	GET    /v1/openapi.json                   this API's OpenAPI document (OpenAPI)
//
// Errors are an *Error as JSON, {"code": ..., "message": ..., "details":
// {...}}, with the status of (*Error).HTTPStatus: those of the API, and a
// route the server lacks (404 not_found), a method the route lacks (405
// method_not_allowed), a body over Options.MaxRequestBytes (413
// too_large), a request over Options.RequestTimeout (503 timeout), a
// missing token (401 unauthorized). A request body may be empty (the zero
// request) and may not hold unknown fields. A watch stream is one Event
// per line, flushed as it happens; if the API drops the watch, a last line,
// an *Error, says why. rpc/httpapi/openapi.yaml describes all of it.
type Server struct {
	api  rpc.API
	log  *slog.Logger
	mux  *http.ServeMux
	opts Options
	// patterns are the routes, as registered with mux.
	patterns []string

	// watchers counts open watch streams, bounded by maxWatchers.
	watchers atomic.Int64
	// maxRequestBytes and maxWatchers start as opts' and change with
	// SetLimits while the server runs.
	maxRequestBytes atomic.Int64
	maxWatchers     atomic.Int64

	// streams is cancelled when shutdown begins, to end watch streams.
	streams    context.Context
	stopStream context.CancelFunc
}

// Options bound what a Server accepts. Zero fields take the defaults named.
type Options struct {
	// MaxRequestBytes bounds one request body (default MaxBodyBytes); a
	// larger one is refused with CodeTooLarge (413).
	MaxRequestBytes int64
	// MaxWatchers bounds the open watch streams (default: unbounded); the
	// next watch is refused with CodeBusy until one ends.
	MaxWatchers int
	// RequestTimeout bounds one request, watches excepted (default: none);
	// a request still running then is answered with CodeTimeout.
	RequestTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers (default 10 s).
	ReadHeaderTimeout time.Duration
	// Middleware, if not nil, wraps the handler of every request Serve and
	// ServeToken answer, outside the token check: for logging, or for
	// tests that check the traffic against the OpenAPI document.
	Middleware func(http.Handler) http.Handler
}

// New returns a Server for api with default Options. A nil logger
// discards logs.
func New(api rpc.API, logger *slog.Logger) *Server {
	return NewWithOptions(api, logger, Options{})
}

// NewWithOptions returns a Server for api bounded by opts. A nil logger
// discards logs.
func NewWithOptions(api rpc.API, logger *slog.Logger, opts Options) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = rpc.MaxBodyBytes
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	streams, stop := context.WithCancel(context.Background())
	s := &Server{api: api, log: logger, mux: http.NewServeMux(), opts: opts, streams: streams, stopStream: stop}
	s.SetLimits(opts.MaxRequestBytes, opts.MaxWatchers)
	s.routes()
	return s
}

// SetLimits replaces Options.MaxRequestBytes and Options.MaxWatchers while
// the server runs (the agent's config reload): requests and watches that
// start afterwards get the new bounds. Zero or less keeps the defaults
// named in Options.
func (s *Server) SetLimits(maxRequestBytes int64, maxWatchers int) {
	if maxRequestBytes <= 0 {
		maxRequestBytes = rpc.MaxBodyBytes
	}
	s.maxRequestBytes.Store(maxRequestBytes)
	s.maxWatchers.Store(int64(max(maxWatchers, 0)))
}

// ServeHTTP answers one request as Serve does (without a token check or
// Options.Middleware), for tests and for embedding the API in another HTTP
// server. A request no route takes is answered with a JSON *Error: 404
// not_found, or 405 method_not_allowed (with an Allow header) when the path
// exists with other methods.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r) // a route, or the mux's redirect to a clean path
		return
	}
	// The mux's own answer (404 or 405, with Allow) as a JSON error.
	rec := &headerRecorder{header: http.Header{}}
	s.mux.ServeHTTP(rec, r)
	e := &rpc.Error{Code: rpc.CodeNotFound, Message: fmt.Sprintf("no route %s %s: see GET /v1/openapi.json for the routes", r.Method, r.URL.Path)}
	if rec.code == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		e = &rpc.Error{
			Code:    rpc.CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s %s: the route takes %s", r.Method, r.URL.Path, allow),
			Details: map[string]any{"allow": strings.Split(allow, ", ")},
		}
	}
	writeJSONError(w, e)
}

// headerRecorder keeps the status and headers a handler writes and drops
// its body.
type headerRecorder struct {
	header http.Header
	code   int
}

func (h *headerRecorder) Header() http.Header { return h.header }

func (h *headerRecorder) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}

func (h *headerRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}

// Routes returns the server's routes as their ServeMux patterns ("GET
// /v1/status"), in the order they were registered.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

// Watchers returns the number of watch streams open now.
func (s *Server) Watchers() int { return int(s.watchers.Load()) }

// Serve answers requests on ln until ctx is done, then shuts down gracefully:
// it stops accepting, ends open watch streams, waits up to a few seconds for
// requests in flight, and returns nil. It closes ln. It returns an error only
// if ln fails. Serve and ServeToken may each be called once, usually with
// the same ctx: when either returns, every open watch stream ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s)
}

// ServeToken is Serve for a listener other users can reach (loopback TCP):
// every request must carry "Authorization: Bearer <token>", else it is
// refused with 401 and CodeUnauthorized. token must not be empty.
func (s *Server) ServeToken(ctx context.Context, ln net.Listener, token string) error {
	if token == "" {
		_ = ln.Close()
		return errors.New("rpc: serve: empty API token")
	}
	return s.serve(ctx, ln, requireToken(token, s))
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	if s.opts.Middleware != nil {
		h = s.opts.Middleware(h)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		s.stopStream()
		return fmt.Errorf("rpc: serve: %w", err)
	case <-ctx.Done():
	}
	s.stopStream()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("rpc: shutdown timed out, closing connections", "err", err)
		_ = hs.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

func (s *Server) routes() {
	s.handle("GET /v1/status", func(r *http.Request) (any, error) {
		return s.api.Status(r.Context())
	})
	s.handle("GET /v1/members", func(r *http.Request) (any, error) {
		return list(s.api.Members(r.Context()))
	})

	s.handle("GET /v1/svc", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		up := false
		if v := q.Get("up"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, rpc.BadRequest("bad value %q for up: want 1 or 0", v)
			}
			up = b
		}
		return list(s.api.ServiceList(r.Context(), q.Get("service"), up))
	})
	s.handle("PUT /v1/svc/{service}/{instance}", func(r *http.Request) (any, error) {
		svc, inst, err := segments2(r, "service", "instance")
		if err != nil {
			return nil, err
		}
		if err := firstError(rpc.CheckName("service", svc), rpc.CheckName("instance", inst)); err != nil {
			return nil, err
		}
		req, err := decode[rpc.ServiceSet](r)
		if err != nil {
			return nil, err
		}
		return s.api.ServiceSet(r.Context(), svc, inst, req)
	})
	s.handle("GET /v1/svc/{service}/{instance}", func(r *http.Request) (any, error) {
		svc, inst, err := segments2(r, "service", "instance")
		if err != nil {
			return nil, err
		}
		return s.api.ServiceGet(r.Context(), svc, inst)
	})
	s.handle("DELETE /v1/svc/{service}/{instance}", func(r *http.Request) (any, error) {
		svc, inst, err := segments2(r, "service", "instance")
		if err != nil {
			return nil, err
		}
		return nil, s.api.ServiceDelete(r.Context(), svc, inst)
	})

	s.handle("GET /v1/bl", func(r *http.Request) (any, error) {
		return list(s.api.BlacklistLists(r.Context()))
	})
	s.handle("GET /v1/bl/{list}", func(r *http.Request) (any, error) {
		l, err := segment(r, "list")
		if err != nil {
			return nil, err
		}
		return list(s.api.BlacklistList(r.Context(), l))
	})
	s.handle("PUT /v1/bl/{list}/{id}", func(r *http.Request) (any, error) {
		l, id, err := segments2(r, "list", "id")
		if err != nil {
			return nil, err
		}
		if err := firstError(rpc.CheckName("list", l), rpc.CheckBlacklistID(id)); err != nil {
			return nil, err
		}
		req, err := decode[rpc.BlacklistAdd](r)
		if err != nil {
			return nil, err
		}
		return s.api.BlacklistAdd(r.Context(), l, id, req)
	})
	s.handle("GET /v1/bl/{list}/{id}", func(r *http.Request) (any, error) {
		l, id, err := segments2(r, "list", "id")
		if err != nil {
			return nil, err
		}
		e, ok, err := s.api.BlacklistHas(r.Context(), l, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, rpc.NotFound("%s is not on list %s", id, l)
		}
		return rpc.BlacklistCheck{Present: true, Entry: e}, nil
	})
	s.handle("DELETE /v1/bl/{list}/{id}", func(r *http.Request) (any, error) {
		l, id, err := segments2(r, "list", "id")
		if err != nil {
			return nil, err
		}
		return nil, s.api.BlacklistRemove(r.Context(), l, id)
	})

	s.handle("GET /v1/kv", func(r *http.Request) (any, error) {
		return list(s.api.KVList(r.Context(), r.URL.Query().Get("prefix")))
	})
	s.handle("PUT /v1/kv/{key...}", func(r *http.Request) (any, error) {
		req, err := decode[rpc.KVPut](r)
		if err != nil {
			return nil, err
		}
		return s.api.KVPut(r.Context(), "/"+r.PathValue("key"), req)
	})
	s.handle("GET /v1/kv/{key...}", func(r *http.Request) (any, error) {
		return s.api.KVGet(r.Context(), "/"+r.PathValue("key"))
	})
	s.handle("DELETE /v1/kv/{key...}", func(r *http.Request) (any, error) {
		var ifVersion *uint64
		if v := r.URL.Query().Get("if_version"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, rpc.BadRequest("if_version: %q is not a version (a whole number)", v)
			}
			ifVersion = &n
		}
		return s.api.KVDelete(r.Context(), "/"+r.PathValue("key"), ifVersion)
	})
	s.handle("GET /v1/kv-history/{key...}", func(r *http.Request) (any, error) {
		return list(s.api.KVHistory(r.Context(), "/"+r.PathValue("key")))
	})

	s.handle("GET /v1/records", func(r *http.Request) (any, error) {
		return list(s.api.Records(r.Context(), r.URL.Query().Get("prefix")))
	})

	s.handle("GET /v1/explain", func(r *http.Request) (any, error) {
		return s.api.Explain(r.Context(), r.URL.Query().Get("key"))
	})

	s.handle("GET /v1/task", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		return list(s.api.TaskList(r.Context(), rpc.TaskFilter{State: q.Get("state"), Queue: q.Get("queue"), Owner: q.Get("owner")}))
	})
	s.handle("POST /v1/task/{id}/touch", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.TaskTouch](r)
		if err != nil {
			return nil, err
		}
		return s.api.TaskTouch(r.Context(), id, req)
	})
	s.handle("POST /v1/queue/{queue}/submit", func(r *http.Request) (any, error) {
		q, err := segment(r, "queue")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.TaskSubmit](r)
		if err != nil {
			return nil, err
		}
		if err := firstError(rpc.CheckName("queue", q), rpc.CheckName("task id", req.ID)); err != nil {
			return nil, err
		}
		return s.api.TaskSubmit(r.Context(), q, req)
	})
	s.handle("POST /v1/queue/{queue}/take", func(r *http.Request) (any, error) {
		q, err := segment(r, "queue")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.TaskTake](r)
		if err != nil {
			return nil, err
		}
		return s.api.TaskTake(r.Context(), q, req)
	})
	s.handle("GET /v1/task/{id}", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		return s.api.TaskGet(r.Context(), id)
	})
	s.handle("POST /v1/task/{id}/assign", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		if err := rpc.CheckName("task id", id); err != nil {
			return nil, err
		}
		req, err := decode[rpc.TaskAssign](r)
		if err != nil {
			return nil, err
		}
		return s.api.TaskAssign(r.Context(), id, req)
	})
	s.handle("POST /v1/task/{id}/state", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.TaskUpdate](r)
		if err != nil {
			return nil, err
		}
		return s.api.TaskUpdate(r.Context(), id, req)
	})
	s.handle("POST /v1/task/{id}/cancel", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		if _, err := decode[struct{}](r); err != nil {
			return nil, err
		}
		return s.api.TaskCancel(r.Context(), id)
	})

	s.handle("GET /v1/kernel", func(r *http.Request) (any, error) {
		return list(s.api.KernelList(r.Context()))
	})
	s.handle("GET /v1/kernel/{id}", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		return s.api.KernelGet(r.Context(), id)
	})
	// A claim may wait its turn for as long as it asks (wait_ms): its own
	// bound, not request_timeout's.
	s.handleUntimed("POST /v1/kernel/{id}/claim", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.KernelClaim](r)
		if err != nil {
			return nil, err
		}
		if err := checkClaim(id, req); err != nil {
			return nil, err
		}
		return s.api.KernelClaim(r.Context(), id, req)
	})
	s.handle("POST /v1/kernel/{id}/renew", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.KernelRenew](r)
		if err != nil {
			return nil, err
		}
		return s.api.KernelRenew(r.Context(), id, req)
	})
	s.handle("POST /v1/kernel/{id}/release", func(r *http.Request) (any, error) {
		id, err := segment(r, "id")
		if err != nil {
			return nil, err
		}
		req, err := decode[rpc.KernelRelease](r)
		if err != nil {
			return nil, err
		}
		return s.api.KernelRelease(r.Context(), id, req)
	})

	s.route("POST /v1/kernel/{id}/session", http.HandlerFunc(s.session))
	s.route("POST /v1/queue/{queue}/session", http.HandlerFunc(s.takeSession))
	s.route("GET /v1/watch", http.HandlerFunc(s.watch))
	s.route("GET /v1/backup", http.HandlerFunc(s.backup))
	s.route("GET /v1/openapi.json", http.HandlerFunc(s.openapi))
}

// route registers h for pattern.
func (s *Server) route(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, h)
}

// handle registers fn for pattern. fn's value is written as JSON with 200,
// or as 204 No Content when it is nil; its error as an error response.
// Options.RequestTimeout bounds it.
func (s *Server) handle(pattern string, fn func(r *http.Request) (any, error)) {
	h := s.handler(fn)
	if d := s.opts.RequestTimeout; d > 0 {
		th := http.TimeoutHandler(h, d, timeoutBody(d))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			th.ServeHTTP(jsonTimeoutWriter{w}, r)
		})
	}
	s.route(pattern, h)
}

// jsonTimeoutWriter gives the answer http.TimeoutHandler writes on a
// timeout, which comes without a Content-Type, the JSON one of its body.
type jsonTimeoutWriter struct{ http.ResponseWriter }

func (w jsonTimeoutWriter) WriteHeader(code int) {
	if h := w.Header(); code == http.StatusServiceUnavailable && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w jsonTimeoutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handleUntimed is handle for a request that bounds its own time.
func (s *Server) handleUntimed(pattern string, fn func(r *http.Request) (any, error)) {
	s.route(pattern, s.handler(fn))
}

func (s *Server) handler(fn func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxRequestBytes.Load())
		v, err := fn(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("rpc: encode response: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}

// timeoutBody is the JSON error a request that outlives d is answered with.
func timeoutBody(d time.Duration) string {
	b, _ := json.Marshal(&rpc.Error{
		Code:    rpc.CodeTimeout,
		Message: fmt.Sprintf("the agent did not finish the request within its request_timeout (%v)", d),
		Details: map[string]any{"request_timeout_ms": d.Milliseconds()},
	})
	return string(b) + "\n"
}

// writeError writes err as a JSON error response: an *Error with its own
// status and code, anything else as 500 internal.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Code == rpc.CodeInternal {
		if r.Context().Err() != nil {
			s.log.Debug("rpc: request abandoned", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			s.log.Error("rpc: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	writeJSONError(w, e)
}

// writeJSONError writes e as a JSON error response with its status.
func writeJSONError(w http.ResponseWriter, e *rpc.Error) {
	b, err := json.Marshal(e)
	if err != nil { // Details that do not encode
		b, _ = json.Marshal(&rpc.Error{Code: e.Code, Message: e.Message})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(append(b, '\n'))
}

// asError returns err as an *Error: itself if it is (or wraps) one, else an
// internal error carrying its message.
func asError(err error) *rpc.Error {
	var e *rpc.Error
	if errors.As(err, &e) {
		return e
	}
	return &rpc.Error{Code: rpc.CodeInternal, Message: err.Error()}
}

// watch streams events under ?prefix= as NDJSON until the client goes away,
// the server shuts down, or the API ends the watch. ?since= resumes after a
// cursor; ?keepalive= is the keepalive interval, a duration ("10s") or
// seconds, 0 for none (default DefaultKeepalive).
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rpc.WatchRequest{Prefix: q.Get("prefix"), Since: q.Get("since")}
	if k := q.Get("keepalive"); k != "" {
		d, err := parseKeepalive(k)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		req.Keepalive = d
	}
	s.stream(w, r, "watch "+req.Prefix, func(ctx context.Context, send func(any) error) error {
		return s.api.Watch(ctx, req, func(ev rpc.Event) error { return send(ev) })
	})
}

// MinKeepalive is the shortest keepalive interval a watch may ask for.
const MinKeepalive = 100 * time.Millisecond

// parseKeepalive reads ?keepalive=: a duration or a number of seconds; 0
// turns keepalives off.
func parseKeepalive(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		if nerr != nil {
			return 0, rpc.BadRequest("keepalive=%q: want a duration such as 10s, or seconds", v)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d == 0 {
		return -1, nil // none
	}
	if d < MinKeepalive || d > time.Hour {
		return 0, rpc.BadRequest("keepalive=%s: want 0 (none) or between %s and 1h", v, MinKeepalive)
	}
	return d, nil
}

// session streams a kernel session's events as NDJSON until the client
// goes away (the agent then releases the session's lease), the server
// shuts down, or the lease ends.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxRequestBytes.Load())
	id, err := segment(r, "id")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := decode[rpc.KernelClaim](r)
	if err == nil {
		err = checkClaim(id, req)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.stream(w, r, "session "+id, func(ctx context.Context, send func(any) error) error {
		return s.api.KernelSession(ctx, id, req, func(ev rpc.SessionEvent) error { return send(ev) })
	})
}

// takeSession streams a task session's events as NDJSON until the client
// goes away (the agent then releases the task's lease: it is queued
// again unless it ended), the server shuts down, or the lease ends.
func (s *Server) takeSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxRequestBytes.Load())
	q, err := segment(r, "queue")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := decode[rpc.TaskTake](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.stream(w, r, "take "+q, func(ctx context.Context, send func(any) error) error {
		return s.api.TaskTakeSession(ctx, q, req, func(ev rpc.SessionEvent) error { return send(ev) })
	})
}

// stream runs serve, which writes lines with send, as an NDJSON response:
// one JSON value per line, flushed as it is sent. Streams count against
// max_watchers. If serve fails, a last line, an *Error, says why.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, what string, serve func(ctx context.Context, send func(any) error) error) {
	n := s.watchers.Add(1)
	defer s.watchers.Add(-1)
	if limit := s.maxWatchers.Load(); limit > 0 && n > limit {
		s.writeError(w, r, &rpc.Error{
			Code:    rpc.CodeBusy,
			Message: fmt.Sprintf("too many watch streams: %d are open, the limit is %d (max_watchers); close one or raise the limit", n-1, limit),
			Details: map[string]any{"limit": limit, "open": n - 1},
		})
		return
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	// mu serializes writes and keeps send from writing after the handler
	// returns, whatever the API does with it.
	var (
		mu   sync.Mutex
		done bool
	)
	enc := json.NewEncoder(w)
	send := func(v any) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return errStreamDone
		}
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("rpc: write event: %w", err)
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("rpc: flush event: %w", err)
		}
		return nil
	}
	s.log.Debug("rpc: stream start", "stream", what)
	err := serve(ctx, send)

	mu.Lock()
	defer mu.Unlock()
	done = true
	if err == nil || ctx.Err() != nil {
		s.log.Debug("rpc: stream end", "stream", what, "err", err)
		return
	}
	s.log.Debug("rpc: stream dropped", "stream", what, "err", err)
	_ = enc.Encode(asError(err))
	_ = rc.Flush()
}

var errStreamDone = errors.New("rpc: watch stream is closed")

// list returns xs, or an empty slice if xs is nil, so lists encode as [].
func list[T any](xs []T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if xs == nil {
		xs = []T{}
	}
	return xs, nil
}

// decode reads the JSON request body into a T. An empty body is the zero T.
func decode[T any](r *http.Request) (T, error) {
	var v T
	dec := json.NewDecoder(r.Body) // limited to Options.MaxRequestBytes by handle
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		return v, bodyError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return v, bodyError(err)
		}
		return v, rpc.BadRequest("bad request body: more than one JSON value")
	}
	return v, nil
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &rpc.Error{
			Code:    rpc.CodeTooLarge,
			Message: fmt.Sprintf("request body is larger than %d bytes (the agent's max_request_bytes)", mbe.Limit),
			Details: map[string]any{"limit": mbe.Limit},
		}
	}
	return rpc.BadRequest("bad request body: %v", err)
}

// segment returns the path wildcard name, which must be non-empty and
// without '/'.
func segment(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if err := rpc.CheckSegment(name, v); err != nil {
		return "", err
	}
	return v, nil
}

func segments2(r *http.Request, a, b string) (string, string, error) {
	va, err := segment(r, a)
	if err != nil {
		return "", "", err
	}
	vb, err := segment(r, b)
	if err != nil {
		return "", "", err
	}
	return va, vb, nil
}

// checkClaim checks the names a kernel claim or session may create: the
// kernel id and its run-once slot.
func checkClaim(id string, req rpc.KernelClaim) error {
	if req.Once == "" {
		return rpc.CheckName("kernel id", id)
	}
	return firstError(rpc.CheckName("kernel id", id), rpc.CheckName("run-once slot", req.Once))
}

// firstError returns the first of errs that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ServeAll serves on the Unix socket listener unix and, if tcp is not nil,
// on tcp with a bearer token (see ServeToken), until ctx is done. The
// channel yields once, when both have stopped: nil, or the error of the
// first that failed on its own (which stops the other).
func (s *Server) ServeAll(ctx context.Context, unix, tcp net.Listener, token string) <-chan error {
	serves := []func(context.Context) error{func(ctx context.Context) error { return s.Serve(ctx, unix) }}
	if tcp != nil {
		serves = append(serves, func(ctx context.Context) error { return s.ServeToken(ctx, tcp, token) })
	}
	sctx, stop := context.WithCancel(ctx)
	errc := make(chan error, len(serves))
	for _, serve := range serves {
		go func() { errc <- serve(sctx) }()
	}
	out := make(chan error, 1)
	go func() {
		defer stop()
		var first error
		for range serves {
			if err := <-errc; err != nil && first == nil {
				first = err
				stop()
			}
		}
		out <- first
	}()
	return out
}
