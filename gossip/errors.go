package gossip

import (
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

var (
	// ErrClosed is returned by methods called after [Node.Close].
	ErrClosed = errors.New("gossip: closed")
	// ErrUnknownTopic is returned by [Node.Publish] for a topic the node did
	// not join.
	ErrUnknownTopic = errors.New("gossip: unknown topic")
	// ErrOversized is returned by [Node.Publish] for a payload larger than
	// [Config.MaxMessageBytes].
	ErrOversized = errors.New("gossip: payload over size limit")
)

// Reasons under which the node itself counts refused messages in
// [Node.Rejections]; reasons chosen by [Config.Validate] are counted as given.
const (
	ReasonOversized = "oversized" // payload larger than MaxMessageBytes
	ReasonInvalid   = "invalid"   // Validate returned a plain error, or Reject with no reason
	ReasonIgnored   = "ignored"   // Ignore with no reason
	ReasonPanic     = "panic"     // Validate panicked
)

// Reasons lists the reasons the node itself counts, so that counters can
// start at zero.
var Reasons = []string{ReasonOversized, ReasonInvalid, ReasonIgnored, ReasonPanic}

// verdict is the error made by Reject and Ignore: it carries the pubsub
// result and the reason the message is counted under.
type verdict struct {
	result pubsub.ValidationResult
	reason string
	err    error
}

func (v *verdict) Error() string {
	word := "rejected"
	if v.result == pubsub.ValidationIgnore {
		word = "ignored"
	}
	if v.err == nil {
		return fmt.Sprintf("gossip: %s (%s)", word, v.reason)
	}
	return fmt.Sprintf("gossip: %s (%s): %v", word, v.reason, v.err)
}

func (v *verdict) Unwrap() error { return v.err }

// Reject makes a [Config.Validate] error that rejects the message: it is
// dropped, not forwarded, and the peer that sent it is penalised by GossipSub.
// Use it for forged or malformed data. The message is counted under reason
// (ReasonInvalid if empty); keep the set of reasons small and fixed, since
// each one becomes a metric label. err may be nil.
func Reject(reason string, err error) error {
	if reason == "" {
		reason = ReasonInvalid
	}
	return &verdict{result: pubsub.ValidationReject, reason: reason, err: err}
}

// Ignore makes a [Config.Validate] error that ignores the message: it is
// dropped and not forwarded, but the sender is not penalised. Use it for
// honest but useless data, such as a stale update. The message is counted
// under reason (ReasonIgnored if empty). err may be nil.
func Ignore(reason string, err error) error {
	if reason == "" {
		reason = ReasonIgnored
	}
	return &verdict{result: pubsub.ValidationIgnore, reason: reason, err: err}
}

// ReasonOf returns the reason carried by an error made with [Reject] or
// [Ignore], or wrapping one (as [Node.Publish] errors do), and whether there
// was one.
func ReasonOf(err error) (reason string, ok bool) {
	var v *verdict
	if errors.As(err, &v) {
		return v.reason, true
	}
	return "", false
}

// asVerdict maps any error returned by Validate to a verdict: plain errors
// reject the message with ReasonInvalid.
func asVerdict(err error) *verdict {
	var v *verdict
	if errors.As(err, &v) {
		return v
	}
	return &verdict{result: pubsub.ValidationReject, reason: ReasonInvalid, err: err}
}
