package gossip

import (
	"errors"
	"fmt"
	"io"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		err    error
		result pubsub.ValidationResult
		reason string
	}{
		{Reject("forged", io.EOF), pubsub.ValidationReject, "forged"},
		{Reject("", nil), pubsub.ValidationReject, ReasonInvalid},
		{Ignore("stale", nil), pubsub.ValidationIgnore, "stale"},
		{Ignore("", io.EOF), pubsub.ValidationIgnore, ReasonIgnored},
		{fmt.Errorf("decode: %w", Ignore("stale", nil)), pubsub.ValidationIgnore, "stale"},
		{io.EOF, pubsub.ValidationReject, ReasonInvalid},
	} {
		v := asVerdict(tc.err)
		if v.result != tc.result || v.reason != tc.reason {
			t.Errorf("asVerdict(%v) = %v %q, want %v %q", tc.err, v.result, v.reason, tc.result, tc.reason)
		}
	}
	err := fmt.Errorf("gossip: publish: %w", Reject("forged", io.EOF))
	if !errors.Is(err, io.EOF) {
		t.Errorf("%v does not wrap its cause", err)
	}
	if r, ok := ReasonOf(err); !ok || r != "forged" {
		t.Errorf("ReasonOf(%v) = %q, %v", err, r, ok)
	}
	if _, ok := ReasonOf(io.EOF); ok {
		t.Error("ReasonOf(plain error) reports a reason")
	}
	if got := Reject("forged", io.EOF).Error(); got != "gossip: rejected (forged): EOF" {
		t.Errorf("Error() = %q", got)
	}
}
