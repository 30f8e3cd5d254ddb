package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var _ API = (*Client)(nil)

// Client talks to the agent's Server over its Unix socket (NewClient) or its
// loopback TCP API (NewTCPClient). It implements
// API, so code can use an agent in-process or remote alike. Each call's
// deadline comes from its ctx; watch streams last until their ctx is done.
// A Client is safe for concurrent use.
type Client struct {
	path  string // where the agent is, for messages
	base  string // URL prefix of every request
	token string // bearer token; "" sends none
	hc    *http.Client
}

// NewClient returns a Client for the agent whose socket is at socketPath. It
// does not connect until the first call.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socketPath)
			if errors.Is(err, syscall.EACCES) {
				err = &SocketDeniedError{Path: socketPath, Err: err}
			}
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		DisableCompression: true,
		MaxIdleConns:       4,
	}
	return &Client{path: socketPath, base: "http://rumor", hc: &http.Client{Transport: tr}}
}

// NewTCPClient returns a Client for the agent's loopback TCP API at apiURL
// (http://127.0.0.1:PORT, or just host:port), sending token as its bearer
// token. It refuses an address that is not loopback, so the token never
// leaves the host. It does not connect until the first call.
func NewTCPClient(apiURL, token string) (*Client, error) {
	hostport := strings.TrimSuffix(strings.TrimPrefix(apiURL, "http://"), "/")
	if strings.Contains(hostport, "://") || strings.Contains(hostport, "/") {
		return nil, fmt.Errorf("rpc: API address %q: want http://HOST:PORT", apiURL)
	}
	if err := CheckLoopback(hostport); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("rpc: the TCP API needs a token (--token-file or RUMOR_TOKEN_FILE)")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		DisableCompression: true,
		MaxIdleConns:       4,
	}
	return &Client{path: "http://" + hostport, base: "http://" + hostport, token: token, hc: &http.Client{Transport: tr}}, nil
}

// Close closes the client's idle connections. The Client remains usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
}

// Members returns the nodes the agent knows.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	return out, c.do(ctx, http.MethodGet, "/v1/members", nil, &out)
}

// ServiceSet writes an instance of a service owned by the agent's node.
func (c *Client) ServiceSet(ctx context.Context, service, instance string, req ServiceSet) (Service, error) {
	var out Service
	p, err := path("svc", seg{"service", service}, seg{"instance", instance})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPut, p, req, &out)
}

// ServiceDelete deletes an instance of a service.
func (c *Client) ServiceDelete(ctx context.Context, service, instance string) error {
	p, err := path("svc", seg{"service", service}, seg{"instance", instance})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// ServiceGet returns one instance of a service.
func (c *Client) ServiceGet(ctx context.Context, service, instance string) (Service, error) {
	var out Service
	p, err := path("svc", seg{"service", service}, seg{"instance", instance})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// ServiceList lists instances of service ("" for all services); upOnly keeps
// only live instances whose status is "up".
func (c *Client) ServiceList(ctx context.Context, service string, upOnly bool) ([]Service, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if upOnly {
		q.Set("up", "1")
	}
	p := "/v1/svc"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out []Service
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// BlacklistAdd puts id on list.
func (c *Client) BlacklistAdd(ctx context.Context, list, id string, req BlacklistAdd) (BlacklistEntry, error) {
	var out BlacklistEntry
	p, err := path("bl", seg{"list", list}, seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPut, p, req, &out)
}

// BlacklistRemove takes id off list.
func (c *Client) BlacklistRemove(ctx context.Context, list, id string) error {
	p, err := path("bl", seg{"list", list}, seg{"id", id})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// BlacklistHas returns the entry and whether id is on list now. An absent
// id is no error: the entry then names only list and id.
func (c *Client) BlacklistHas(ctx context.Context, list, id string) (BlacklistEntry, bool, error) {
	var out BlacklistCheck
	p, err := path("bl", seg{"list", list}, seg{"id", id})
	if err != nil {
		return BlacklistEntry{}, false, err
	}
	absent := BlacklistEntry{List: list, ID: id}
	if err := c.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		if CodeOf(err) == CodeNotFound {
			return absent, false, nil
		}
		return BlacklistEntry{}, false, err
	}
	if !out.Present {
		return absent, false, nil // an agent from before absent ids were 404
	}
	return out.Entry, true, nil
}

// BlacklistList returns the ids on list.
func (c *Client) BlacklistList(ctx context.Context, list string) ([]BlacklistEntry, error) {
	var out []BlacklistEntry
	p, err := path("bl", seg{"list", list})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// kvPath is the URL path of kv key under base (/v1/kv or /v1/kv-history),
// each segment escaped.
func kvPath(base, key string) (string, error) {
	if !strings.HasPrefix(key, "/") || key == "/" {
		return "", fmt.Errorf("kv key %q must start with '/' and name a key (like /config/app/env/name)", key)
	}
	var b strings.Builder
	b.WriteString(base)
	for _, s := range strings.Split(key[1:], "/") {
		if s == "" {
			return "", fmt.Errorf("kv key %q has an empty segment (a doubled or trailing '/')", key)
		}
		b.WriteByte('/')
		b.WriteString(escapeSegment(s))
	}
	return b.String(), nil
}

// KVPut writes a kv key.
func (c *Client) KVPut(ctx context.Context, key string, req KVPut) (KVEntry, error) {
	var out KVEntry
	p, err := kvPath("/v1/kv", key)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPut, p, req, &out)
}

// KVGet returns a live kv key.
func (c *Client) KVGet(ctx context.Context, key string) (KVEntry, error) {
	var out KVEntry
	p, err := kvPath("/v1/kv", key)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// KVList lists the live kv keys whose path starts with prefix ("" for all).
func (c *Client) KVList(ctx context.Context, prefix string) ([]KVEntry, error) {
	var out []KVEntry
	p := "/v1/kv"
	if prefix != "" {
		p += "?" + url.Values{"prefix": {prefix}}.Encode()
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// KVDelete deletes a kv key, only if this agent's version of it is
// *ifVersion when ifVersion is not nil.
func (c *Client) KVDelete(ctx context.Context, key string, ifVersion *uint64) (KVEntry, error) {
	var out KVEntry
	p, err := kvPath("/v1/kv", key)
	if err != nil {
		return out, err
	}
	if ifVersion != nil {
		p += "?if_version=" + strconv.FormatUint(*ifVersion, 10)
	}
	return out, c.do(ctx, http.MethodDelete, p, nil, &out)
}

// KVHistory returns the writes to a kv key the agent kept, newest first.
func (c *Client) KVHistory(ctx context.Context, key string) ([]KVEntry, error) {
	var out []KVEntry
	p, err := kvPath("/v1/kv-history", key)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// BlacklistLists returns every blacklist with an id on it, with how many.
func (c *Client) BlacklistLists(ctx context.Context) ([]BlacklistSummary, error) {
	var out []BlacklistSummary
	return out, c.do(ctx, http.MethodGet, "/v1/bl", nil, &out)
}

// TaskAssign records the owner of a task.
func (c *Client) TaskAssign(ctx context.Context, id string, req TaskAssign) (Task, error) {
	return c.taskPost(ctx, id, "assign", req)
}

// TaskUpdate changes a task's state; only its owner may.
func (c *Client) TaskUpdate(ctx context.Context, id string, req TaskUpdate) (Task, error) {
	return c.taskPost(ctx, id, "state", req)
}

// TaskCancel asks a task's owner to cancel it.
func (c *Client) TaskCancel(ctx context.Context, id string) (Task, error) {
	return c.taskPost(ctx, id, "cancel", nil)
}

func (c *Client) taskPost(ctx context.Context, id, verb string, req any) (Task, error) {
	var out Task
	p, err := path("task", seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, p+"/"+verb, req, &out)
}

// TaskGet returns a task and where it runs.
func (c *Client) TaskGet(ctx context.Context, id string) (Task, error) {
	var out Task
	p, err := path("task", seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// TaskList returns the tasks that f selects.
func (c *Client) TaskList(ctx context.Context, f TaskFilter) ([]Task, error) {
	var out []Task
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "queue": f.Queue, "owner": f.Owner} {
		if v != "" {
			q.Set(k, v)
		}
	}
	p := "/v1/task"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// TaskSubmit queues a new task on a work queue.
func (c *Client) TaskSubmit(ctx context.Context, queue string, req TaskSubmit) (Task, error) {
	var out Task
	p, err := path("queue", seg{"queue", queue})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, p+"/submit", req, &out)
}

// TaskTake takes the next task of a work queue for a one-shot worker: the
// task is the caller's until its visibility timeout passes (TaskTouch
// extends it) or it ends it (TaskUpdate).
func (c *Client) TaskTake(ctx context.Context, queue string, req TaskTake) (TakeResult, error) {
	var out TakeResult
	p, err := path("queue", seg{"queue", queue})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, p+"/take", req, &out)
}

// TaskTakeSession takes the next task of a work queue on a session (see
// API.TaskTakeSession) and calls fn with each of its events until ctx is
// done (the agent then releases the task's lease: the task is queued
// again unless it ended), fn returns an error (returned), or the agent
// ends the stream: after a final event (denied, lost, expired, released)
// it returns nil. The caller keeps the session alive with TaskTouch
// (Session set) within each visibility timeout.
func (c *Client) TaskTakeSession(ctx context.Context, queue string, req TaskTake, fn func(SessionEvent) error) error {
	p, err := path("queue", seg{"queue", queue})
	if err != nil {
		return err
	}
	return c.sessionStream(ctx, p+"/session", req, fn)
}

// TaskTouch extends the lease of a task the agent's node took.
func (c *Client) TaskTouch(ctx context.Context, id string, req TaskTouch) (Task, error) {
	return c.taskPost(ctx, id, "touch", req)
}

// KernelClaim claims a kernel's lease and reports the verdict; a denial is a
// result with Granted false, not an error.
func (c *Client) KernelClaim(ctx context.Context, id string, req KernelClaim) (ClaimResult, error) {
	var out ClaimResult
	p, err := path("kernel", seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, p+"/claim", req, &out)
}

// KernelRenew extends a lease the agent's node holds.
func (c *Client) KernelRenew(ctx context.Context, id string, req KernelRenew) (Kernel, error) {
	return c.kernelPost(ctx, id, "renew", req)
}

// KernelRelease gives up a lease the agent's node holds (a session's, a
// one-shot claim's, or, with Force, whoever's).
func (c *Client) KernelRelease(ctx context.Context, id string, req KernelRelease) (Kernel, error) {
	return c.kernelPost(ctx, id, "release", req)
}

// KernelSession opens a session that claims kernel id (see
// API.KernelSession) and calls fn with each of its events until ctx is
// done (then it returns nil and the agent releases the lease), fn returns
// an error (returned), or the agent ends the stream: after a final event
// (denied, lost, expired, released) it returns nil; otherwise an *Error or
// ErrWatchClosed. fn is called from KernelSession's goroutine.
func (c *Client) KernelSession(ctx context.Context, id string, req KernelClaim, fn func(SessionEvent) error) error {
	p, err := path("kernel", seg{"id", id})
	if err != nil {
		return err
	}
	return c.sessionStream(ctx, p+"/session", req, fn)
}

// sessionStream posts req to a session route p and calls fn with each
// event (see KernelSession).
func (c *Client) sessionStream(ctx context.Context, p string, req any, fn func(SessionEvent) error) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc: encode request: %w", err)
	}
	final := false
	err = c.stream(ctx, http.MethodPost, p, bytes.NewReader(b), func(dec *json.Decoder) error {
		var line struct {
			SessionEvent
			wireError
		}
		if err := dec.Decode(&line); err != nil {
			return readError{err}
		}
		if e := line.err(); e != nil {
			return e
		}
		switch line.Event {
		case SessionDenied, SessionLost, SessionExpired, SessionReleased:
			final = true
		}
		return fn(line.SessionEvent)
	})
	if final && errors.Is(err, ErrWatchClosed) {
		return nil
	}
	return err
}

func (c *Client) kernelPost(ctx context.Context, id, verb string, req any) (Kernel, error) {
	var out Kernel
	p, err := path("kernel", seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, p+"/"+verb, req, &out)
}

// KernelGet returns a kernel's lease as the agent sees it.
func (c *Client) KernelGet(ctx context.Context, id string) (Kernel, error) {
	var out Kernel
	p, err := path("kernel", seg{"id", id})
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// KernelList returns all kernels the agent knows.
func (c *Client) KernelList(ctx context.Context) ([]Kernel, error) {
	var out []Kernel
	return out, c.do(ctx, http.MethodGet, "/v1/kernel", nil, &out)
}

// Records lists the stored writes of every key under prefix.
func (c *Client) Records(ctx context.Context, prefix string) ([]Record, error) {
	var out []Record
	return out, c.do(ctx, http.MethodGet, "/v1/records?prefix="+url.QueryEscape(prefix), nil, &out)
}

// Explain says what the agent holds for key and why its value won.
func (c *Client) Explain(ctx context.Context, key string) (Explanation, error) {
	var out Explanation
	return out, c.do(ctx, http.MethodGet, "/v1/explain?key="+url.QueryEscape(key), nil, &out)
}

// Watch calls fn for every line of a watch of req.Prefix (API.Watch), in
// order, until ctx is done (then it returns nil), fn returns an error
// (then it returns that error), or the agent ends the stream (then it
// returns why: an *Error, or ErrWatchClosed). fn is called from Watch's
// goroutine.
//
// With req.Reconnect > 0, a stream that breaks (the connection drops, the
// agent restarts or ends the stream with an internal or busy error) is
// opened again with Since set to the last cursor seen, so fn misses
// nothing: it sees the changes made meanwhile, or a resync line and a
// fresh snapshot. Watch gives up after req.Reconnect failed attempts in a
// row (a line read resets the count), waiting 100 ms, then twice as long
// each time up to 5 s, between them.
func (c *Client) Watch(ctx context.Context, req WatchRequest, fn func(Event) error) error {
	wait, failed := 100*time.Millisecond, 0
	for {
		read := false
		err := c.watchOnce(ctx, req, func(ev Event) error {
			read = true
			if ev.Cursor != "" {
				req.Since = ev.Cursor
			}
			if err := fn(ev); err != nil {
				return callerError{err}
			}
			return nil
		})
		var ce callerError
		if errors.As(err, &ce) {
			return ce.err
		}
		if err == nil || !reconnectable(err) {
			return err
		}
		if read {
			wait, failed = 100*time.Millisecond, 0
		}
		if failed++; failed > req.Reconnect {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// callerError is an error of Watch's fn, never retried.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// reconnectable reports whether a watch that ended with err may be opened
// again: the stream broke or the agent stopped, not a refusal (by the
// agent, or by the socket's permissions).
func reconnectable(err error) bool {
	var sd *SocketDeniedError
	if errors.As(err, &sd) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code == CodeInternal || e.Code == CodeBusy || e.Code == CodeTimeout
	}
	return true // ErrWatchClosed, a read or dial failure
}

// watchOnce opens one watch stream.
func (c *Client) watchOnce(ctx context.Context, req WatchRequest, fn func(Event) error) error {
	q := url.Values{"prefix": {req.Prefix}}
	if req.Since != "" {
		q.Set("since", req.Since)
	}
	switch {
	case req.Keepalive < 0:
		q.Set("keepalive", "0")
	case req.Keepalive > 0:
		q.Set("keepalive", req.Keepalive.String())
	}
	return c.stream(ctx, http.MethodGet, "/v1/watch?"+q.Encode(), nil, func(dec *json.Decoder) error {
		var line streamLine
		if err := dec.Decode(&line); err != nil {
			return readError{err}
		}
		if e := line.err(); e != nil {
			return e
		}
		return fn(line.Event)
	})
}

// stream sends a request whose response is an NDJSON stream and calls next
// to read and handle each line, until ctx is done (nil), the stream ends
// (ErrWatchClosed) or next fails (its error).
func (c *Client) stream(ctx context.Context, method, p string, body io.Reader, next func(*json.Decoder) error) error {
	req, err := c.newRequest(ctx, method, p, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		err := next(dec)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		var re readError
		if !errors.As(err, &re) {
			return err // the line's error, or next's caller's
		}
		if errors.Is(re.err, io.EOF) {
			return ErrWatchClosed
		}
		return fmt.Errorf("rpc: read stream: %w", re.err)
	}
}

// readError is a failure to read a stream's next line.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// wireError is an *Error as the agent sends it, in a response body or as
// a stream's last line. Agents before the "message" field sent the message
// as "error".
type wireError struct {
	Code    string         `json:"code,omitempty"`
	Message string         `json:"message,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Legacy  string         `json:"error,omitempty"`
}

// err returns the *Error w holds, or nil if it holds none (a stream's
// line that is not an error).
func (w wireError) err() *Error {
	if w.Code == "" && w.Message == "" && w.Legacy == "" {
		return nil
	}
	e := &Error{Code: w.Code, Message: w.Message, Details: w.Details}
	if e.Code == "" {
		e.Code = CodeInternal
	}
	if e.Message == "" {
		e.Message = w.Legacy
	}
	return e
}

// do sends a request with body in (if not nil) as JSON and decodes a
// successful response into out (if not nil).
func (c *Client) do(ctx context.Context, method, p string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("rpc: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, p, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("rpc: %s %s: decode response: %w", method, p, err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, p string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, body)
	if err != nil {
		return nil, fmt.Errorf("rpc: build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send does req, turning a failure to connect into an unreachable error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err == nil {
		return resp, nil
	}
	var de *dialError
	if errors.As(err, &de) {
		return nil, &unreachableError{path: c.path, cause: de.err}
	}
	if cerr := req.Context().Err(); cerr != nil {
		return nil, fmt.Errorf("rpc: %s %s: %w", req.Method, req.URL.Path, cerr)
	}
	return nil, fmt.Errorf("rpc: %s %s: %w", req.Method, req.URL.Path, err)
}

// responseError turns a non-2xx response into an error: the agent's *Error
// when the body is one, else an internal *Error describing the response.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var w wireError
	if json.Unmarshal(b, &w) == nil && w.Code != "" {
		return w.err()
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("agent answered %s: %s", resp.Status, msg)}
}

// dialError marks an error from connecting to the socket.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// unreachableError is returned when nothing answers on the socket. It
// matches ErrAgentUnreachable and wraps the cause.
type unreachableError struct {
	path  string
	cause error
}

func (e *unreachableError) Error() string {
	cause := e.cause.Error()
	var se *os.SyscallError
	if errors.As(e.cause, &se) {
		cause = se.Error() // "connect: connection refused", without the path
	}
	return fmt.Sprintf("cannot reach the rumor agent at %s: is \"rumor agent\" running? (%s)", e.path, cause)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrAgentUnreachable, e.cause} }

// SocketDeniedError is the cause (errors.As) of the unreachable error a
// Client returns when the system refuses it the socket: the socket's mode,
// or a directory on its path, does not let this user in.
type SocketDeniedError struct {
	// Path is the socket's path.
	Path string
	// Err is the dial's error (it matches syscall.EACCES).
	Err error
}

func (e *SocketDeniedError) Error() string {
	return "cannot connect to " + e.Path + ": permission denied"
}

func (e *SocketDeniedError) Unwrap() error { return e.Err }

// seg is a named path segment.
type seg struct{ name, value string }

// path builds /v1/<ns>/<seg>/... with each segment checked and escaped.
func path(ns string, segs ...seg) (string, error) {
	var b strings.Builder
	b.WriteString("/v1/")
	b.WriteString(ns)
	for _, s := range segs {
		if err := CheckSegment(s.name, s.value); err != nil {
			return "", err
		}
		b.WriteByte('/')
		b.WriteString(escapeSegment(s.value))
	}
	return b.String(), nil
}

// escapeSegment escapes v for use as one path segment. "." and ".." are
// escaped too, or path cleaning would eat them.
func escapeSegment(v string) string {
	switch v {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(v)
}
