package replica

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRejectionLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	r := &refusalLog{}
	lines := func() []string {
		defer buf.Reset()
		if buf.Len() == 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(buf.String()), "\n")
	}
	counts := func(gossip, ae map[string]uint64) map[Source]PathCounters {
		out := map[Source]PathCounters{}
		for _, s := range Sources {
			out[s] = PathCounters{Refused: map[string]uint64{}}
		}
		for r, n := range gossip {
			out[Gossip].Refused[r] = n
		}
		for r, n := range ae {
			out[AntiEntropy].Refused[r] = n
		}
		return out
	}
	r.log(log, counts(map[string]uint64{"forged-writer": 5000, "limit": 2}, nil))
	got := lines()
	want := []string{
		`level=WARN msg="deltas refused" path=gossip reason=limit count=2 total=2 within=10s`,
		`level=WARN msg="deltas refused" path=gossip reason=forged-writer count=5000 total=5000 within=10s`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("first period:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.log(log, counts(map[string]uint64{"forged-writer": 5000, "limit": 2}, nil))
	if got := lines(); got != nil {
		t.Fatalf("nothing new refused, logged %q", got)
	}
	r.log(log, counts(map[string]uint64{"forged-writer": 5003, "limit": 2, "clock-skew": 1}, map[string]uint64{"unsigned": 7}))
	got = lines()
	want = []string{
		`level=WARN msg="deltas refused" path=gossip reason=forged-writer count=3 total=5003 within=10s`,
		`level=WARN msg="deltas refused" path=gossip reason=clock-skew count=1 total=1 within=10s`,
		`level=WARN msg="deltas refused" path=anti-entropy reason=unsigned count=7 total=7 within=10s`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("second period:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	if ok, n := l.allow(t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("allowed again %ds later", i)
		}
	}
	if ok, n := l.allow(t0.Add(LogEvery)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back; want true, 5", ok, n)
	}
}
