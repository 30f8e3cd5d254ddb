package agent

import (
	"context"
	"log/slog"
	"testing"

	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/obs"
	"github.com/rumor-dev/rumor/replica"
)

// TestMetricsStartAtZero scrapes /metrics of a fresh registry with the
// agent's label values: every reason a gossip message or a delta can be
// refused under, and every path, shows at 0 before anything is refused.
func TestMetricsStartAtZero(t *testing.T) {
	reg := obs.NewRegistry(func() obs.Snapshot { return obs.Snapshot{} }, metricLabels(), obs.NewLagProbe())
	srv, err := obs.Listen("127.0.0.1:0", reg, func(context.Context) (any, error) { return nil, nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(srv.Stop)
	fams, err := scrape(t, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var ws []want
	for _, r := range append(append([]string(nil), gossip.Reasons...), replica.Reasons...) {
		ws = append(ws, eq("rumor_rejections_total", 0, "reason", r))
	}
	for _, p := range replica.Sources {
		for _, r := range replica.Reasons {
			ws = append(ws, eq("rumor_refused_deltas_total", 0, "path", p.String(), "reason", r))
		}
	}
	if err := check(fams, ws); err != nil {
		t.Fatal(err)
	}
	if n, want := len(fams["rumor_rejections_total"].GetMetric()), len(gossip.Reasons)+len(replica.Reasons); n != want {
		t.Errorf("rumor_rejections_total has %d series, want %d (one per known reason)", n, want)
	}
}
