package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

func get(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), resp.Header.Get("Content-Type")
}

// TestStatusJSON: the status page and its data are served next to
// /metrics, from the agent's API.
func TestStatusJSON(t *testing.T) {
	cfg := config.LocalConfig(t.TempDir())
	cfg.MetricsAddr = "127.0.0.1:0"
	a, err := New(cfg, Options{NoSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := a.ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Status: "up"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"u1", "u2"} {
		if _, err := a.BlacklistAdd(ctx, "fraud", id, rpc.BlacklistAdd{}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := a.KernelClaim(ctx, "k0", rpc.KernelClaim{Keep: true, Job: "j1"}); err != nil || !r.Granted {
		t.Fatalf("claim: %+v, %v", r, err)
	}
	base := "http://" + a.MetricsAddr()
	if page, ct := get(t, base+"/"); !strings.Contains(page, "<title>rumor status</title>") || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET / (%s): %.200s", ct, page)
	}
	body, ct := get(t, base+"/status.json")
	if ct != "application/json" {
		t.Fatalf("status.json Content-Type %q", ct)
	}
	var p pageStatus
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("status.json: %v: %.300s", err, body)
	}
	switch {
	case p.Status.Node != a.ID() || len(p.Members) != 1 || !p.Members[0].Self:
		t.Fatalf("status %+v, members %+v: want this agent alone", p.Status, p.Members)
	case len(p.Services) != 1 || p.ServiceStates["up"] != 1:
		t.Fatalf("services %+v by status %v, want web/w1 up", p.Services, p.ServiceStates)
	case len(p.Kernels) != 1 || p.Kernels[0].Holder != a.ID() || p.Kernels[0].Epoch != 1 || !p.Kernels[0].Live:
		t.Fatalf("kernels %+v, want k0 held by this agent at epoch 1", p.Kernels)
	case p.Blacklists["fraud"] != 2:
		t.Fatalf("blacklists %v, want fraud: 2", p.Blacklists)
	case len(p.Lag.Buckets) != 13:
		t.Fatalf("lag histogram %+v, want 13 buckets (1 ms .. 10 s)", p.Lag)
	}
	resp, err := http.Get(base + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nothing: %s, want 404", resp.Status)
	}
}
