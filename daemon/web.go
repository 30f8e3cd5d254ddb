package daemon

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/rumor-dev/rumor/rpc"
)

//go:embed web/status.html
var statusHTML []byte

// metricsServer serves /metrics, the status page at / and its data at
// /status.json on Config.MetricsAddr.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenMetrics binds Config.MetricsAddr (nil, nil when it is empty).
func (a *Agent) listenMetrics() (*metricsServer, error) {
	if a.cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("daemon: metrics_addr %s: %w (set metrics_addr to a free address, or \"\" to turn metrics off)", a.cfg.MetricsAddr, err)
	}
	reg := a.newRegistry()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn), Registry: reg,
	}))
	mux.HandleFunc("GET /status.json", a.serveStatusJSON)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(statusHTML)
	})
	return &metricsServer{ln: ln, srv: &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}}, nil
}

// serve runs the server until stop.
func (m *metricsServer) serve() error {
	if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// stop closes the listener and waits for requests in flight (a second at
// most, then cuts them).
func (m *metricsServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m.srv.Shutdown(ctx) != nil {
		_ = m.srv.Close()
	}
}

// MetricsAddr returns the address /metrics and the status page are served
// on ("" when metrics_addr is off), with the port it bound when
// metrics_addr asked for port 0.
func (a *Agent) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.ln.Addr().String()
}

// pageStatus is /status.json, the data of the status page.
type pageStatus struct {
	Time          time.Time      `json:"time"`
	Status        rpc.Status     `json:"status"`
	Members       []rpc.Member   `json:"members"`
	Services      []rpc.Service  `json:"services"`
	Kernels       []rpc.Kernel   `json:"kernels"`
	Tasks         []rpc.Task     `json:"tasks"`
	Blacklists    map[string]int `json:"blacklists"` // live ids per list
	Lag           pageHistogram  `json:"lag"`
	Settle        float64        `json:"settle_ms"`
	ServiceStates map[string]int `json:"services_by_status"`
}

// pageHistogram is rumor_propagation_lag_seconds: cumulative counts per
// upper bound (seconds), as Prometheus keeps them.
type pageHistogram struct {
	Count   uint64       `json:"count"`
	SumSecs float64      `json:"sum_seconds"`
	Buckets []pageBucket `json:"buckets"`
}

type pageBucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

func (a *Agent) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	page, err := a.pageStatus(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(page)
}

func (a *Agent) pageStatus(ctx context.Context) (pageStatus, error) {
	p := pageStatus{Time: a.clock.Now().UTC(), Blacklists: make(map[string]int), ServiceStates: make(map[string]int)}
	var err error
	if p.Status, err = a.Status(ctx); err != nil {
		return p, err
	}
	if p.Members, err = a.Members(ctx); err != nil {
		return p, err
	}
	if p.Services, err = a.ServiceList(ctx, "", false); err != nil {
		return p, err
	}
	if p.Kernels, err = a.KernelList(ctx); err != nil {
		return p, err
	}
	if p.Tasks, err = a.TaskList(ctx); err != nil {
		return p, err
	}
	for _, s := range p.Services {
		p.ServiceStates[s.Status]++
	}
	now := a.nowMS()
	for _, e := range a.store.List("bl/") {
		if e.Winner().Live(now) {
			p.Blacklists[strings.SplitN(e.Key, "/", 3)[1]]++
		}
	}
	p.Lag = histogramOf(a.lag.hist)
	p.Settle = float64(a.settleWindow().Microseconds()) / 1000
	return p, nil
}

func histogramOf(h prometheus.Histogram) pageHistogram {
	var m dto.Metric
	if h.Write(&m) != nil || m.Histogram == nil {
		return pageHistogram{}
	}
	out := pageHistogram{Count: m.Histogram.GetSampleCount(), SumSecs: m.Histogram.GetSampleSum()}
	for _, b := range m.Histogram.Bucket {
		out.Buckets = append(out.Buckets, pageBucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
	}
	return out
}
