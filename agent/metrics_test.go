package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// scrape reads http://addr/metrics and parses it as Prometheus text.
func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// metric returns the value of the sample of family name whose labels
// include the given name=value pairs (counter, gauge or histogram count).
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, error) {
	f, ok := fams[name]
	if !ok {
		return 0, fmt.Errorf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), nil
		}
	}
	return 0, fmt.Errorf("no sample of %s with labels %v", name, labels)
}

// want checks that every metric (name, labels) satisfies ok.
type want struct {
	name   string
	labels []string
	ok     func(float64) bool
	what   string
}

func check(fams map[string]*dto.MetricFamily, ws []want) error {
	for _, w := range ws {
		v, err := metric(fams, w.name, w.labels...)
		if err != nil {
			return err
		}
		if !w.ok(v) {
			return fmt.Errorf("%s%v = %v, want %s", w.name, w.labels, v, w.what)
		}
	}
	return nil
}

func eq(name string, v float64, labels ...string) want {
	return want{name, labels, func(x float64) bool { return x == v }, fmt.Sprint(v)}
}

func ge(name string, v float64, labels ...string) want {
	return want{name, labels, func(x float64) bool { return x >= v }, fmt.Sprintf(">= %v", v)}
}

// TestMetrics scrapes /metrics of two agents after writes and kernel
// claims and checks the counters by name and label.
func TestMetrics(t *testing.T) {
	agents := startCluster(t, 2, func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	a, b := agents[0], agents[1]
	if a.MetricsAddr() == "" || strings.HasSuffix(a.MetricsAddr(), ":0") {
		t.Fatalf("MetricsAddr() = %q, want the bound address", a.MetricsAddr())
	}
	ctx := context.Background()
	const writes = 20
	for i := range writes {
		if _, err := a.ServiceSet(ctx, "web", fmt.Sprintf("w%d", i), rpc.ServiceSet{Status: "up", Addr: "10.0.0.1:80"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	if r, err := a.KernelClaim(ctx, "k0", rpc.KernelClaim{Keep: true}); err != nil || !r.Granted {
		t.Fatalf("claim on a: %+v, %v", r, err)
	}
	eventually(t, 10*time.Second, "b sees a's lease", func() error {
		if k, err := b.KernelGet(ctx, "k0"); err != nil || k.Holder != a.ID() {
			return fmt.Errorf("b: %+v, %v", k, err)
		}
		return nil
	})
	if r, err := b.KernelClaim(ctx, "k0", rpc.KernelClaim{Keep: true}); err != nil || r.Granted {
		t.Fatalf("claim on b: %+v, %v; want denied", r, err)
	}

	eventually(t, 10*time.Second, "a's metrics", func() error {
		fams, err := scrape(t, a.MetricsAddr())
		if err != nil {
			return err
		}
		return check(fams, []want{
			ge("rumor_deltas_out_total", writes, "namespace", "svc"),
			ge("rumor_deltas_out_total", 1, "namespace", "bl"),
			ge("rumor_deltas_out_total", 1, "namespace", "kernel"),
			ge("rumor_deltas_out_total", 1, "namespace", "node"),
			eq("rumor_deltas_out_total", 0, "namespace", "task"),
			eq("rumor_store_keys", writes, "namespace", "svc"),
			ge("rumor_store_bytes", writes*float64(len("svc/web/w0")+len(a.ID())), "namespace", "svc"),
			eq("rumor_store_keys", 2, "namespace", "node"),
			ge("rumor_bytes_out_total", 1),
			ge("rumor_bytes_in_total", 1),
			eq("rumor_members", 1, "state", "alive"),
			eq("rumor_members", 0, "state", "dead"),
			eq("rumor_connected_peers", 1),
			eq("rumor_leases_held", 1),
			eq("rumor_leases_granted_total", 1),
			eq("rumor_leases_denied_total", 0),
			ge("rumor_anti_entropy_rounds_total", 1),
			ge("rumor_watchers", 1), // the agent's own lease watcher
			ge("rumor_probes_total", 1, "kind", "ping_sent"),
			ge("rumor_probes_total", 1, "kind", "ping_received"),
			eq("rumor_member_events_total", 0, "kind", "accusation"),
			ge("rumor_member_events_total", 1, "kind", "announcement"),
			eq("rumor_info", 1, "node", a.ID(), "version", Version),
			ge("go_goroutines", 1),
		})
	})
	eventually(t, 10*time.Second, "b's metrics", func() error {
		fams, err := scrape(t, b.MetricsAddr())
		if err != nil {
			return err
		}
		return check(fams, []want{
			ge("rumor_deltas_in_total", writes, "namespace", "svc"),
			ge("rumor_deltas_in_total", 1, "namespace", "kernel"),
			eq("rumor_store_keys", writes, "namespace", "svc"),
			eq("rumor_leases_held", 0),
			eq("rumor_leases_granted_total", 0),
			eq("rumor_leases_denied_total", 1),
			ge("rumor_propagation_lag_seconds", 1),
		})
	})
}

// TestMetricsAddrInUse: a metrics address that cannot be bound is a start
// error naming metrics_addr.
func TestMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.LocalConfig(t.TempDir())
	cfg.MetricsAddr = ln.Addr().String()
	a, err := New(cfg, Options{NoSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = a.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "metrics_addr "+ln.Addr().String()) {
		t.Fatalf("Start with metrics_addr in use: %v, want an error naming metrics_addr", err)
	}
}
