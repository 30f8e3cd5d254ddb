package rpc_test

import (
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
)

func TestCheckName(t *testing.T) {
	good := []string{
		"web", "w1", "i-1", "jupyter-0", "nightly-report", "nightly-2026-12-05", "web_api", "a.b.c",
		"task:abc", "once:cron:nightly", "user@host", "k0000001", "0", "A", strings.Repeat("a", rpc.MaxNameLen),
		"12D3KooWSelfSelfSelfSelfSelfSelfSELF0001",
	}
	for _, s := range good {
		if err := rpc.CheckName("service", s); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{
		"", "we b", " web", "web ", "-x", "_x", ".", "..", ":x", "@x", "a/b", "ünï", "a+b", "a#b", "%2F",
		"tab\tx", "nl\nx", "nul\x00", strings.Repeat("a", rpc.MaxNameLen+1),
	}
	for _, s := range bad {
		err := rpc.CheckName("service", s)
		if rpc.CodeOf(err) != rpc.CodeBadRequest {
			t.Errorf("CheckName(%q) = %v, want bad_request", s, err)
			continue
		}
		if !strings.Contains(err.Error(), rpc.NameRule) || !strings.HasPrefix(err.Error(), "service ") {
			t.Errorf("CheckName(%q) = %q: want it to name the service and say the rule", s, err)
		}
	}
}

func TestCheckBlacklistID(t *testing.T) {
	good := []string{
		"user42", "-weird", "a+b@example.com", "auth0|1234", "10.0.0.1", "2001:db8::1", "ünï", "tok=",
		"#", ".", "..", "q?x=1#frag", "100%", strings.Repeat("é", rpc.MaxBlacklistIDLen/2),
	}
	for _, s := range good {
		if err := rpc.CheckBlacklistID(s); err != nil {
			t.Errorf("CheckBlacklistID(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{
		"", "a b", "a\tb", "a\nb", "a\rb", "a/b", "\x00", "a\x7fb", "\u200b", "a\u00a0b", "\xff",
		strings.Repeat("a", rpc.MaxBlacklistIDLen+1),
	}
	for _, s := range bad {
		err := rpc.CheckBlacklistID(s)
		if rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), rpc.BlacklistIDRule) {
			t.Errorf("CheckBlacklistID(%q) = %v, want bad_request saying the rule", s, err)
		}
	}
}
