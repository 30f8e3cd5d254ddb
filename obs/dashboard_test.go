package obs

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// dashboardFile is the Grafana dashboard shipped for the agent's metrics.
const dashboardFile = "../configs/grafana/rumor.json"

// metricName matches the metric names a PromQL expression of the
// dashboard may use: the agent's own and the Go and process collectors'.
var metricName = regexp.MustCompile(`\b(?:rumor|go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// queries returns every PromQL expression in the dashboard: the panels'
// target exprs and the variables' queries.
func queries(v any, key string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			queries(x, k, out)
		}
	case []any:
		for _, x := range v {
			queries(x, key, out)
		}
	case string:
		if key == "expr" || key == "query" || key == "definition" {
			*out = append(*out, v)
		}
	}
}

// TestDashboardMetrics checks that every metric the Grafana dashboard
// queries is one an agent's registry serves (a histogram's by its _bucket,
// _sum and _count series), and that every panel queries something.
func TestDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	var dash struct {
		Panels []struct {
			Type    string   `json:"type"`
			Title   string   `json:"title"`
			Targets []target `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || slices.ContainsFunc(p.Targets, func(q target) bool { return strings.TrimSpace(q.Expr) == "" }) {
			t.Errorf("panel %q: a target without an expr", p.Title)
		}
	}

	// Every family the agent's registry serves, with one value for each label.
	one := []string{"x"}
	labels := Labels{Namespaces: one, Paths: one, Reasons: one, MessageReasons: one, MemberStates: one}
	fams := gather(t, NewRegistry(func() Snapshot { return Snapshot{} }, labels, NewLagProbe()))
	served := make(map[string]bool)
	for name, f := range fams {
		served[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			served[name+"_sum"], served[name+"_count"] = true, true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				served[name+"_bucket"] = true
			}
		}
	}

	var all any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	queries(all, "", &exprs)
	used := make(map[string]bool)
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
			if !served[name] {
				t.Errorf("the dashboard queries %s, which the agent does not serve: %s", name, e)
			}
		}
	}
	// The test must see the dashboard's queries, or it checks nothing.
	for _, name := range []string{"rumor_rejections_total", "rumor_refused_deltas_total", "rumor_propagation_lag_seconds_bucket", "rumor_members", "rumor_info"} {
		if !used[name] {
			t.Errorf("the dashboard does not query %s", name)
		}
	}
}
