package obs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the families of reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// series returns the labels of every sample of f as "name=value,..." (in
// the order Prometheus sorts them) with the sample's value.
func series(f *dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		out[strings.Join(ls, ",")] = v
	}
	return out
}

// TestKnownSeriesStartAtZero scrapes a registry over a zero snapshot: every
// labelled counter shows a series for each known label value, at 0, and
// a reason known twice (to Reasons and MessageReasons) is one series.
func TestKnownSeriesStartAtZero(t *testing.T) {
	labels := Labels{
		Namespaces: []string{"svc", "bl"}, Paths: []string{"local", "gossip"}, Reasons: []string{"limit", "bad-key"},
		MessageReasons: []string{"oversized", "limit"}, MemberStates: []string{"alive", "dead"},
	}
	fams := gather(t, NewRegistry(func() Snapshot { return Snapshot{} }, labels, NewLagProbe()))
	want := map[string][]string{
		"rumor_rejections_total":          {"reason=bad-key", "reason=limit", "reason=oversized"},
		"rumor_refused_deltas_total":      {"path=gossip,reason=bad-key", "path=gossip,reason=limit", "path=local,reason=bad-key", "path=local,reason=limit"},
		"rumor_deltas_in_total":           {"namespace=bl", "namespace=svc"},
		"rumor_deltas_out_total":          {"namespace=bl", "namespace=svc"},
		"rumor_probes_total":              {"kind=ping_received", "kind=ping_sent", "kind=pingreq_received", "kind=pingreq_sent"},
		"rumor_probe_bytes_total":         {"direction=in", "direction=out"},
		"rumor_member_events_total":       {"kind=accusation", "kind=announcement", "kind=closed_link", "kind=refutation"},
		"rumor_members":                   {"state=alive", "state=dead"},
		"rumor_leases_granted_total":      {""},
		"rumor_anti_entropy_failed_total": {""},
	}
	for name, keys := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		got := series(f)
		if len(got) != len(keys) {
			t.Errorf("%s: %d series %v, want %d: %v", name, len(got), got, len(keys), keys)
		}
		for _, k := range keys {
			if v, ok := got[k]; !ok || v != 0 {
				t.Errorf("%s{%s} = %v (present: %v), want 0", name, k, v, ok)
			}
		}
	}
}

// TestRejectionOfAnUnknownReason checks that a reason no one listed
// still shows once counted, beside the known ones at 0.
func TestRejectionOfAnUnknownReason(t *testing.T) {
	labels := Labels{Reasons: []string{"limit"}, MessageReasons: []string{"oversized"}}
	snap := func() Snapshot { return Snapshot{Rejections: map[string]uint64{"dropped": 2, "limit": 1}} }
	got := series(gather(t, NewRegistry(snap, labels, NewLagProbe()))["rumor_rejections_total"])
	want := map[string]float64{"reason=dropped": 2, "reason=limit": 1, "reason=oversized": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rumor_rejections_total = %v, want %v", got, want)
	}
}
