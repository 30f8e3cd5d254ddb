package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestParseCommit(t *testing.T) {
	for _, tc := range []struct {
		in       string
		commit   string
		modified bool
	}{
		{"1a2b3c", "1a2b3c", false},
		{"1a2b3c-dirty", "1a2b3c", true},
		{"-dirty", "-dirty", false},
	} {
		c, m := parseCommit(tc.in)
		if c != tc.commit || m != tc.modified {
			t.Errorf("parseCommit(%q) = %q, %v; want %q, %v", tc.in, c, m, tc.commit, tc.modified)
		}
	}
}

func TestFromSettings(t *testing.T) {
	rev, mod := fromSettings([]debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}})
	if rev != "abc" || !mod {
		t.Errorf("got %q, %v; want abc, true", rev, mod)
	}
	if rev, mod := fromSettings([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}); rev != "" || mod {
		t.Errorf("without a revision: got %q, %v; want \"\", false", rev, mod)
	}
}

func TestGetUsesTheLinkerValue(t *testing.T) {
	defer func(c string) { commit = c }(commit)
	commit = "0123456789abcdef0123-dirty"
	i := Get()
	if i.Version != Release || i.Commit != "0123456789abcdef0123" || !i.Modified || i.Go != runtime.Version() {
		t.Fatalf("Get() = %+v", i)
	}
	if got, want := i.String(), Release+" (0123456789ab+modified)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "1.0"}).String(); got != "1.0" {
		t.Errorf("without a commit: String() = %q", got)
	}
}
