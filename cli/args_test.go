package cli

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReorder(t *testing.T) {
	cmds := commands()
	globals := globalFlags()
	for _, tc := range []struct{ in, want string }{
		{"svc set web i --addr x --ttl 5s", "svc set --addr x --ttl 5s web i"},
		{"svc set --addr=x web i --up", "svc set --addr=x --up web i"},
		{"svc ls --up web", "svc ls --up web"},
		{"svc ls web --up -o json", "svc ls --up -o json web"},
		{"svc ls web --socket s", "--socket s svc ls web"},
		{"svc --socket s ls", "--socket s svc ls"},
		{"-o json svc ls web", "-o json svc ls web"},
		{"bl add l -- -x --ttl", "bl add -- l -x --ttl"},
		{"bl add --reason r -- l -x", "bl add --reason r -- l -x"},
		{"bl has l i -v", "bl has -v l i"},
		{"svc set web i --help", "svc set --help"},
		{"svc bogus a --x", "svc bogus a --x"},
		{"bogus --socket s", "bogus --socket s"},
		{"watch svc/ -o", "watch -o svc/"},
		{"task state t done --result r", "task state --result r t done"},
		{"kernel claim k --unknown v", "kernel claim --unknown k v"},
		{"", ""},
	} {
		got := strings.Join(reorder(strings.Fields(tc.in), globals, cmds), " ")
		if got != tc.want {
			t.Errorf("reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestArgSpec(t *testing.T) {
	for _, tc := range []struct {
		usage    string
		req, opt int
	}{{"", 0, 0}, {"<a> <b>", 2, 0}, {"[a]", 0, 1}, {"<id> <running|done>", 2, 0}} {
		if req, opt := argSpec(tc.usage); req != tc.req || opt != tc.opt {
			t.Errorf("argSpec(%q) = %d, %d", tc.usage, req, opt)
		}
	}
}

func TestShortAndSpan(t *testing.T) {
	if got := short("12D3KooWabcdefgh12345678"); got != "12345678" {
		t.Errorf("short = %q", got)
	}
	if short("") != "-" || short("abc") != "abc" {
		t.Error("short of short ids")
	}
	var got []string
	for _, d := range []string{"0s", "59s", "1m", "59m59s", "1h", "47h", "48h", "240h"} {
		got = append(got, span(mustDuration(t, d)))
	}
	if want := []string{"0s", "59s", "1m", "59m", "1h", "47h", "2d", "10d"}; !slices.Equal(got, want) {
		t.Errorf("span = %v, want %v", got, want)
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
