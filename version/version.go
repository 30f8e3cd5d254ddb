// Package version says which build of rumor this is: its release, the
// commit it was built from and the Go release that built it. It imports
// none of rumor's packages, so that the agent and the command line can
// both show it.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Release is rumor's release version: what agents put in their member
// entries and status.
const Release = "0.2.0"

// commit is the commit rumor was built from, set at build time with
// -ldflags "-X github.com/rumor-dev/rumor/version.commit=<hash>" (make
// build does, from git describe, with a "-dirty" suffix for a modified
// work tree). When it is empty, Get reads what go build recorded.
var commit string

// Info describes a build of rumor.
type Info struct {
	// Version is the release, Release.
	Version string `json:"version"`
	// Commit is the commit it was built from ("" when unknown): the
	// -ldflags value if set, else go build's vcs.revision.
	Commit string `json:"commit,omitempty"`
	// Modified says the work tree had changes that were not committed
	// (go build's vcs.modified; a "-dirty" suffix of the -ldflags value).
	Modified bool `json:"modified,omitempty"`
	// Go is the Go release that built it.
	Go string `json:"go"`
}

// Get returns this build's Info.
func Get() Info {
	info := Info{Version: Release, Go: runtime.Version()}
	if commit != "" {
		info.Commit, info.Modified = parseCommit(commit)
		return info
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.Commit, info.Modified = fromSettings(bi.Settings)
	}
	return info
}

// parseCommit splits the -ldflags value into the commit and whether the
// work tree was modified.
func parseCommit(s string) (string, bool) {
	if c, ok := strings.CutSuffix(s, "-dirty"); ok && c != "" {
		return c, true
	}
	return s, false
}

// fromSettings reads the commit go build recorded.
func fromSettings(settings []debug.BuildSetting) (rev string, modified bool) {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified && rev != ""
}

// String returns the release and, when known, the commit, shortened to 12
// characters, with "+modified" for a modified work tree: "0.2.0
// (1a2b3c4d5e6f)".
func (i Info) String() string {
	if i.Commit == "" {
		return i.Version
	}
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "+modified"
	}
	return i.Version + " (" + c + ")"
}
