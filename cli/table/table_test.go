package table

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

func TestShortAndSpan(t *testing.T) {
	if got := Short("12D3KooWabcdefgh12345678"); got != "12345678" {
		t.Errorf("Short = %q", got)
	}
	if Short("") != "-" || Short("abc") != "abc" {
		t.Error("short of short ids")
	}
	var got []string
	for _, d := range []string{"0s", "59s", "1m", "59m59s", "1h", "47h", "48h", "240h"} {
		got = append(got, Span(mustDuration(t, d)))
	}
	if want := []string{"0s", "59s", "1m", "59m", "1h", "47h", "2d", "10d"}; !slices.Equal(got, want) {
		t.Errorf("Span = %v, want %v", got, want)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEventKVConflict(t *testing.T) {
	var b strings.Builder
	ev := rpc.Event{
		Key: "kv/config/mode", Op: rpc.OpConflict, Node: "12D3KooWwinnerwinner", Time: time.Unix(0, 0),
		Value: rpc.KVEntry{Key: "/config/mode", Value: "red", Version: 2},
		Lost:  &rpc.KVEntry{Key: "/config/mode", Value: "green\n", Version: 2, Writer: "12D3KooWloserloser1"},
	}
	if err := Event(&b, ev); err != nil {
		t.Fatal(err)
	}
	want := `conflict kv/config/mode erwinner version=2 value=red lost=green\n lost_version=2 lost_by=erloser1`
	if !strings.Contains(b.String(), want) {
		t.Errorf("line %q lacks %q", b.String(), want)
	}
}
