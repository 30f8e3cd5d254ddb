// Package rpc is the agent's local API as its clients see it: HTTP/JSON
// over a Unix socket (or loopback TCP with a bearer token), with NDJSON
// streams for watches and sessions. It holds the request and answer types,
// the errors, the name rules and Client. The agent implements API and
// serves it with package rpc/httpapi; the CLI talks to it only through
// Client.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// API is what the agent offers its local clients. Methods are called from
// the server's request goroutines, concurrently; each may block until ctx is
// done. Errors that are the caller's fault are *Error values (see
// BadRequest, NotFound, Denied); any other error is reported as internal.
type API interface {
	Status(ctx context.Context) (Status, error)
	Members(ctx context.Context) ([]Member, error)

	ServiceSet(ctx context.Context, service, instance string, req ServiceSet) (Service, error)
	ServiceDelete(ctx context.Context, service, instance string) error
	ServiceGet(ctx context.Context, service, instance string) (Service, error)
	// ServiceList lists instances of service ("" for all services); upOnly
	// keeps only instances whose status is "up" and that are live.
	ServiceList(ctx context.Context, service string, upOnly bool) ([]Service, error)

	BlacklistAdd(ctx context.Context, list, id string, req BlacklistAdd) (BlacklistEntry, error)
	BlacklistRemove(ctx context.Context, list, id string) error
	// BlacklistHas returns the entry and whether id is on list now.
	BlacklistHas(ctx context.Context, list, id string) (BlacklistEntry, bool, error)
	BlacklistList(ctx context.Context, list string) ([]BlacklistEntry, error)
	// BlacklistLists lists every blacklist with an id on it now, by name,
	// with how many ids are on it.
	BlacklistLists(ctx context.Context) ([]BlacklistSummary, error)

	TaskAssign(ctx context.Context, id string, req TaskAssign) (Task, error)
	TaskUpdate(ctx context.Context, id string, req TaskUpdate) (Task, error)
	TaskCancel(ctx context.Context, id string) (Task, error)
	TaskGet(ctx context.Context, id string) (Task, error)
	TaskList(ctx context.Context, f TaskFilter) ([]Task, error)
	TaskSubmit(ctx context.Context, queue string, req TaskSubmit) (Task, error)
	TaskTake(ctx context.Context, queue string, req TaskTake) (TakeResult, error)
	// TaskTakeSession takes a task held by the client's session; fn gets
	// its events (see SessionEvent) until the lease ends or ctx is done.
	TaskTakeSession(ctx context.Context, queue string, req TaskTake, fn func(SessionEvent) error) error
	TaskTouch(ctx context.Context, id string, req TaskTouch) (Task, error)

	// KernelClaim blocks for the settle window and reports the verdict:
	// Granted, or denied with the winner in Kernel.Holder. A denial is a
	// normal result, not an error.
	KernelClaim(ctx context.Context, id string, req KernelClaim) (ClaimResult, error)
	KernelRenew(ctx context.Context, id string, req KernelRenew) (Kernel, error)
	KernelRelease(ctx context.Context, id string, req KernelRelease) (Kernel, error)
	// KernelSession claims a kernel for a session (waiting if asked) and
	// calls fn with the verdict, then with what happens to the lease,
	// until ctx is done (then it releases the lease and returns nil), fn
	// returns an error, or the lease ends. The session holds the lease
	// only while its client renews it (KernelRenew with its id).
	KernelSession(ctx context.Context, id string, req KernelClaim, fn func(SessionEvent) error) error
	KernelGet(ctx context.Context, id string) (Kernel, error)
	KernelList(ctx context.Context) ([]Kernel, error)

	// KVPut writes a kv key (a path such as /config/app/env/name); a
	// failed IfVersion check is Denied.
	KVPut(ctx context.Context, key string, req KVPut) (KVEntry, error)
	// KVGet returns a live kv key; NotFound if it is absent, deleted or
	// expired.
	KVGet(ctx context.Context, key string) (KVEntry, error)
	// KVList lists the live kv keys whose path starts with prefix ("" for
	// all), in key order.
	KVList(ctx context.Context, prefix string) ([]KVEntry, error)
	// KVDelete deletes a kv key, if ifVersion is nil or equals this
	// agent's version of it, and returns the delete.
	KVDelete(ctx context.Context, key string, ifVersion *uint64) (KVEntry, error)
	// KVHistory returns the writes to a kv key this agent kept, newest
	// first.
	KVHistory(ctx context.Context, key string) ([]KVEntry, error)

	// Records lists the stored writes of every key under prefix, in key
	// order ("" for all keys).
	Records(ctx context.Context, prefix string) ([]Record, error)

	// Explain says what the agent holds for key and why its value won.
	Explain(ctx context.Context, key string) (Explanation, error)

	// Watch calls fn with a snapshot of the keys under req.Prefix (or,
	// from req.Since, the changes after it), a synced line, then every
	// change, until ctx is done (then it returns nil), fn returns an
	// error, or the agent ends the watch (then it returns why).
	Watch(ctx context.Context, req WatchRequest, fn func(Event) error) error
}

// Error codes, carried in error responses and mapped to CLI exit codes.
const (
	CodeBadRequest = "bad_request" // the request is malformed: exit 2
	CodeNotFound   = "not_found"   // no such key: exit 1
	CodeDenied     = "denied"      // refused by ownership or a lease: exit 3
	CodeInternal   = "internal"    // the agent failed: exit 1
	// CodeBusy: a limit of the agent is reached (max_watchers): exit 1.
	CodeBusy = "busy"
	// CodeTimeout: the request outlived the agent's request_timeout: exit 1.
	CodeTimeout = "timeout"
	// CodeUnauthorized: the TCP API needs the right bearer token: exit 1.
	CodeUnauthorized = "unauthorized"
	// CodeTooLarge: the request body is over the agent's
	// max_request_bytes: exit 2.
	CodeTooLarge = "too_large"
	// CodeMethodNotAllowed: the route exists, but not with this method:
	// exit 2.
	CodeMethodNotAllowed = "method_not_allowed"
)

// Error is an API error with a code that says whose fault it is. Every
// error response of the API, and the last line of a stream the agent
// ends, is one, as JSON: {"code": ..., "message": ..., "details": {...}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details holds facts about the error a program may act on, such as
	// the limit that was reached ({"limit": 3}); it is omitted when empty.
	Details map[string]any `json:"details,omitempty"`
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// HTTPStatus maps the code to an HTTP status.
func (e *Error) HTTPStatus() int {
	switch e.Code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeDenied:
		return http.StatusConflict
	case CodeBusy:
		return http.StatusTooManyRequests
	case CodeTimeout:
		return http.StatusServiceUnavailable
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusInternalServerError
	}
}

// BadRequest returns an *Error with CodeBadRequest.
func BadRequest(format string, args ...any) error {
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns an *Error with CodeNotFound.
func NotFound(format string, args ...any) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// Denied returns an *Error with CodeDenied.
func Denied(format string, args ...any) error {
	return &Error{Code: CodeDenied, Message: fmt.Sprintf(format, args...)}
}

// Busy returns an *Error with CodeBusy.
func Busy(format string, args ...any) error {
	return &Error{Code: CodeBusy, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err if it is (or wraps) an *Error, else CodeInternal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
