package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

func TestExplainRegisterAndKernel(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, func(c *config.Config) { c.Settle = 50 * time.Millisecond })
	a, b := as[0], as[1]

	if _, err := a.BlacklistAdd(ctx, "risk", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "add reaches b", func() error {
		if _, ok, _ := b.BlacklistHas(ctx, "risk", "u1"); !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err := b.BlacklistRemove(ctx, "risk", "u1"); err != nil {
		t.Fatal(err)
	}
	var x rpc.Explanation
	eventually(t, 5*time.Second, "a explains the remove", func() error {
		var err error
		x, err = a.Explain(ctx, "bl/risk/u1")
		if err != nil || len(x.Records) != 1 || x.Records[0].Op != "delete" {
			return fmt.Errorf("%+v %v", x, err)
		}
		return nil
	})
	if x.Records[0].Node != b.ID() || !strings.Contains(x.Rule, "remove beats an add") || !strings.Contains(x.Verdict, "delete by "+b.ID()) {
		t.Fatalf("explanation %+v", x)
	}
	if len(x.Superseded) != 1 || x.Superseded[0].Node != a.ID() || x.Superseded[0].Op != "put" || !strings.Contains(x.Superseded[0].Why, "later clock") {
		t.Fatalf("superseded = %+v; want a's add, lost to a later clock", x.Superseded)
	}

	res, err := a.KernelClaim(ctx, "gpu", rpc.KernelClaim{Keep: true, TTLMillis: 60_000})
	if err != nil || !res.Granted {
		t.Fatalf("claim: %+v %v", res, err)
	}
	if _, err := a.KernelRelease(ctx, "gpu", rpc.KernelRelease{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b sees the release", func() error {
		if k, _ := b.KernelGet(ctx, "gpu"); !k.Released {
			return fmt.Errorf("%+v", k)
		}
		return nil
	})
	if res, err := b.KernelClaim(ctx, "gpu", rpc.KernelClaim{Keep: true, TTLMillis: 60_000}); err != nil || !res.Granted || res.Kernel.Epoch != 2 {
		t.Fatalf("b's claim: %+v %v", res, err)
	}
	if _, err := b.KernelRenew(ctx, "gpu", rpc.KernelRenew{TTLMillis: 120_000}); err != nil {
		t.Fatal(err)
	}
	x, err = b.Explain(ctx, "kernel/gpu")
	if err != nil {
		t.Fatal(err)
	}
	// Epoch 1's claim and release went when epoch 2 was claimed.
	if !strings.Contains(x.Verdict, "held by "+b.ID()+" (epoch 2)") || len(x.Records) != 2 {
		t.Fatalf("kernel explanation %+v", x)
	}
	whys := map[string]string{}
	for _, r := range x.Records {
		whys[fmt.Sprintf("%s/%d", r.Op, r.Epoch)] = r.Why
	}
	for rec, want := range map[string]string{"claim/2": "won epoch 2: the first claim of the highest epoch", "renew/2": "renew of the winning lease (epoch 2); it gave the expiry"} {
		if !strings.Contains(whys[rec], want) {
			t.Errorf("%s: why %q, want it to say %q", rec, whys[rec], want)
		}
	}

	if _, err := a.Explain(ctx, "bl/risk/nobody"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Fatalf("unknown key: %v, want not found", err)
	}
	if _, err := a.Explain(ctx, "nonsense"); rpc.CodeOf(err) != rpc.CodeBadRequest {
		t.Fatalf("bad key: %v, want bad request", err)
	}
}
