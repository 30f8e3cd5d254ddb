package obs

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

//go:embed web/status.html
var statusHTML []byte

// Server serves /metrics, the status page at / and its data at
// /status.json.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr for a Server of reg, whose status page shows what
// status returns (marshalled as JSON). An address in use is an error that
// names the setting to change.
func Listen(addr string, reg *prometheus.Registry, status func(context.Context) (any, error), log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("obs: metrics_addr %s: %w (set metrics_addr to a free address, or \"\" to turn metrics off)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Registry: reg,
	}))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		page, err := status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(page)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(statusHTML)
	})
	return &Server{ln: ln, srv: &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Stop; it returns nil then.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Stop closes the listener and waits for requests in flight (a second at
// most, then cuts them).
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
}

// Histogram is a Prometheus histogram's state: cumulative counts per upper
// bound (seconds), as Prometheus keeps them.
type Histogram struct {
	Count   uint64   `json:"count"`
	SumSecs float64  `json:"sum_seconds"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one bucket of a Histogram.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// Histogram returns the lag histogram's state, for the status page.
func (p *LagProbe) Histogram() Histogram {
	var m dto.Metric
	if p.hist.Write(&m) != nil || m.Histogram == nil {
		return Histogram{}
	}
	out := Histogram{Count: m.Histogram.GetSampleCount(), SumSecs: m.Histogram.GetSampleSum()}
	for _, b := range m.Histogram.Bucket {
		out.Buckets = append(out.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
	}
	return out
}
