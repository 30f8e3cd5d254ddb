package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// Every read says who wrote the value, when, and how that writer stands
// now, so a reader can judge how stale it may be.
func TestReadsCarryOriginAndStaleness(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, func(c *config.Config) {
		c.Heartbeat, c.SuspectAfter, c.DeadAfter = 100*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond
		c.Settle = 50 * time.Millisecond
	})
	a, b := as[0], as[1]
	if _, err := a.BlacklistAdd(ctx, "risk", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Status: "up"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TaskAssign(ctx, "t1", rpc.TaskAssign{}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.KernelClaim(ctx, "gpu", rpc.KernelClaim{Keep: true, TTLMillis: 60_000}); err != nil || !res.Granted {
		t.Fatalf("claim: %+v %v", res, err)
	}
	origins := func() (map[string]rpc.Origin, error) {
		out := map[string]rpc.Origin{}
		e, ok, err := b.BlacklistHas(ctx, "risk", "u1")
		if err != nil || !ok {
			return nil, fmt.Errorf("bl: %v %v", ok, err)
		}
		out["bl"] = e.Origin
		s, err := b.ServiceGet(ctx, "web", "w1")
		if err != nil {
			return nil, err
		}
		out["svc"] = s.Origin
		tk, err := b.TaskGet(ctx, "t1")
		if err != nil {
			return nil, err
		}
		out["task"] = tk.Origin
		k, err := b.KernelGet(ctx, "gpu")
		if err != nil {
			return nil, err
		}
		out["kernel"] = k.Origin
		return out, nil
	}
	eventually(t, 5*time.Second, "b reads a's writes with their origin", func() error {
		os, err := origins()
		if err != nil {
			return err
		}
		for what, o := range os {
			if o.Origin != a.ID() || o.Stamp == "" || o.AgeMillis < 0 || o.AgeMillis > 60_000 || o.OriginState != "alive" {
				return fmt.Errorf("%s: origin %+v", what, o)
			}
		}
		return nil
	})
	a.Close()
	eventually(t, 10*time.Second, "b says the origin is dead and the values age", func() error {
		os, err := origins()
		if err != nil {
			return err
		}
		for what, o := range os {
			if o.OriginState != "dead" || o.AgeMillis < 800 {
				return fmt.Errorf("%s: origin %+v", what, o)
			}
		}
		return nil
	})
}
