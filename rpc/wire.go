package rpc

import "errors"

// MaxBodyBytes is the largest request body the server reads by default; a
// larger one is refused with CodeTooLarge.
const MaxBodyBytes = 1 << 20

// ErrAgentUnreachable is wrapped by every Client error that means nothing
// answered on the socket (it is missing, stale, or not accessible).
var ErrAgentUnreachable = errors.New("rpc: agent unreachable")

// ErrWatchClosed is returned by Client.Watch when the agent ended the stream
// without saying why, for example because it is shutting down.
var ErrWatchClosed = errors.New("rpc: the agent closed the watch stream")

// BlacklistCheck is the answer to a bl has request (GET /v1/bl/{list}/{id})
// for an id on the list; an absent id is answered 404 with code not_found,
// which Client.BlacklistHas reports as not present. `rumor bl has -o json`
// prints one either way.
type BlacklistCheck struct {
	Present bool `json:"present"`
	// Entry is the entry when Present; when not, it names only the list
	// and the id.
	Entry BlacklistEntry `json:"entry"`
}

// streamLine is one line of a watch stream: an Event, or, as the last line,
// an error.
type streamLine struct {
	Event
	wireError
}
