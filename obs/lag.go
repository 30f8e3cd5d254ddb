package obs

import (
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rumor-dev/rumor/rpc"
)

const (
	// lagSamples is how many recent write lags are kept per origin.
	lagSamples = 256
	// lagOrigins bounds the origins tracked; past it the one heard from
	// longest ago is forgotten.
	lagOrigins = 4096
)

// lagBuckets are the bounds of rumor_propagation_lag_seconds: 1 ms to 10 s.
var lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// LagProbe is the convergence probe: for every write that arrives by
// gossip it records lag = local receive time - the write's HLC wall
// time, clamped at 0. The lag includes the clock skew between the origin
// and this node (a skewed origin can read 0 or seconds), and the HLC may
// run slightly ahead of its writer's wall clock after it observed a faster
// peer, which also reads as less lag.
type LagProbe struct {
	hist prometheus.Histogram

	mu    sync.Mutex
	peers map[string]*lagRing
}

// lagRing holds one origin's last lagSamples lags in ms.
type lagRing struct {
	samples [lagSamples]int64
	n       int   // samples held, up to lagSamples
	next    int   // where the next sample goes
	last    int64 // local ms of the last sample
}

// NewLagProbe returns an empty probe.
func NewLagProbe() *LagProbe {
	return &LagProbe{
		hist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rumor_propagation_lag_seconds",
			Help:    "Propagation lag of writes received by gossip: local receive time minus the origin's stamp, clamped at 0 (includes clock skew).",
			Buckets: lagBuckets,
		}),
		peers: make(map[string]*lagRing),
	}
}

// Observe records one write from origin, received at nowMS and
// stamped at stampMS (wall ms).
func (p *LagProbe) Observe(origin string, stampMS, nowMS int64) {
	lag := max(nowMS-stampMS, 0)
	p.hist.Observe(float64(lag) / 1000)
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.peers[origin]
	if !ok {
		if len(p.peers) >= lagOrigins {
			p.forgetOldestLocked()
		}
		r = &lagRing{}
		p.peers[origin] = r
	}
	r.samples[r.next] = lag
	r.next = (r.next + 1) % lagSamples
	r.n = min(r.n+1, lagSamples)
	r.last = nowMS
}

func (p *LagProbe) forgetOldestLocked() {
	var oldest string
	for id, r := range p.peers {
		if oldest == "" || r.last < p.peers[oldest].last {
			oldest = id
		}
	}
	delete(p.peers, oldest)
}

// Report returns every origin's sample count and lag percentiles, by node id.
func (p *LagProbe) Report() []rpc.PeerLag {
	p.mu.Lock()
	out := make([]rpc.PeerLag, 0, len(p.peers))
	var s []int64
	for id, r := range p.peers {
		s = append(s[:0], r.samples[:r.n]...)
		slices.Sort(s)
		out = append(out, rpc.PeerLag{Node: id, Samples: r.n, P50Millis: rank(s, 0.50), P99Millis: rank(s, 0.99)})
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// rank is the nearest-rank q-quantile of sorted samples (0 if none).
func rank(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
