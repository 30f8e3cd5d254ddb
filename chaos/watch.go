package chaos

import (
	"fmt"
	"strconv"
	"strings"
)

// CheckWatchMissed: a watch resumed with --since skipped or repeated a
// change: the cursors of a watch of every key must run on one by one.
const CheckWatchMissed = "watch-missed"

// WatchStream checks the lines of one agent's watch of every key (prefix
// ""), across the reconnects of its client: within one generation of the
// agent's history, every change's cursor must be the one after the last
// line's, whether the line came on this connection or the one before it
// (the client resumed with since). A resync line (then a snapshot) starts
// over. Feed it every line, in order, with Line.
type WatchStream struct {
	gen      string
	rev      uint64
	synced   bool // a cursor to go on from is known
	Lines    int  `json:"lines"`
	Changes  int  `json:"changes"`
	Resyncs  int  `json:"resyncs"`
	Missed   int  `json:"missed"`
	Repeated int  `json:"repeated"`
	// Problems describe the first few gaps and repeats.
	Problems []string `json:"problems,omitempty"`
}

// Line takes one line of the stream: its op and cursor ("" if none).
func (w *WatchStream) Line(op, cursor string) {
	w.Lines++
	switch op {
	case "resync":
		w.Resyncs++
		w.synced = false
		return
	case "snapshot":
		return
	}
	gen, rev, ok := parseCursor(cursor)
	if !ok {
		w.problem("a %s line with the cursor %q", op, cursor)
		return
	}
	switch {
	case op == "synced" || !w.synced:
		// The start of a stream, or the first line after a resync.
	case gen != w.gen:
		w.problem("a %s line of generation %s after %s, without a resync", op, gen, w.gen)
	case op == "keepalive":
		if rev != w.rev {
			w.problem("a keepalive at %d after the change at %d", rev, w.rev)
		}
	case rev > w.rev+1:
		w.Missed += int(rev - w.rev - 1)
		w.problem("%s at %d after %d: %d changes missed", op, rev, w.rev, rev-w.rev-1)
	case rev <= w.rev:
		w.Repeated++
		w.problem("%s at %d after %d: a change repeated", op, rev, w.rev)
	}
	if op != "synced" && op != "keepalive" {
		w.Changes++
	}
	w.gen, w.rev, w.synced = gen, rev, true
}

func (w *WatchStream) problem(format string, args ...any) {
	if len(w.Problems) < 5 {
		w.Problems = append(w.Problems, fmt.Sprintf(format, args...))
	}
}

// Violations returns a violation for each problem the stream showed.
func (w *WatchStream) Violations(name string) []Violation {
	var vs []Violation
	for _, p := range w.Problems {
		vs = append(vs, Violation{Check: CheckWatchMissed, Detail: name + ": " + p})
	}
	return vs
}

// parseCursor reads "<gen>-<rev>".
func parseCursor(s string) (string, uint64, bool) {
	gen, r, ok := strings.Cut(s, "-")
	if !ok || gen == "" {
		return "", 0, false
	}
	rev, err := strconv.ParseUint(r, 10, 64)
	return gen, rev, err == nil
}
