package cli

import (
	"strings"
	"testing"
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
