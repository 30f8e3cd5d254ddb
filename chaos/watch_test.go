package chaos

import "testing"

func TestWatchStream(t *testing.T) {
	var w WatchStream
	for _, l := range [][2]string{
		{"snapshot", ""}, {"synced", "g1-10"}, {"put", "g1-11"}, {"keepalive", "g1-11"},
		// reconnect with since=g1-11
		{"delete", "g1-12"}, {"refresh", "g1-13"},
		// the agent restarted: a foreign cursor
		{"resync", ""}, {"snapshot", ""}, {"synced", "g2-3"}, {"put", "g2-4"},
	} {
		w.Line(l[0], l[1])
	}
	if w.Missed != 0 || w.Repeated != 0 || len(w.Problems) != 0 || w.Changes != 4 || w.Resyncs != 1 {
		t.Fatalf("a clean stream: %+v", w)
	}
	w.Line("put", "g2-6") // 5 missed
	w.Line("put", "g2-6") // repeated
	w.Line("put", "g3-7") // a new generation without resync
	w.Line("keepalive", "g3-9")
	if w.Missed != 1 || w.Repeated != 1 || len(w.Problems) != 4 || len(w.Violations("agent 0")) != 4 {
		t.Fatalf("a broken stream: %+v", w)
	}
}
