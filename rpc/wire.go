package rpc

import "errors"

// MaxBodyBytes is the largest request body the server reads; a larger one is
// refused with CodeBadRequest.
const MaxBodyBytes = 1 << 20

// ErrAgentUnreachable is wrapped by every Client error that means nothing
// answered on the socket (it is missing, stale, or not accessible).
var ErrAgentUnreachable = errors.New("rpc: agent unreachable")

// ErrWatchClosed is returned by Client.Watch when the agent ended the stream
// without saying why, for example because it is shutting down.
var ErrWatchClosed = errors.New("rpc: the agent closed the watch stream")

// BlacklistCheck is the answer to a bl has request (GET /v1/bl/{list}/{id}).
type BlacklistCheck struct {
	Present bool `json:"present"`
	// Entry is the entry when Present, else whatever the agent knows (often
	// the zero value).
	Entry BlacklistEntry `json:"entry"`
}

// streamLine is one line of a watch stream: an Event, or, as the last line,
// an error.
type streamLine struct {
	Event
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}
