package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// watchLeases collects the lease events agent a sends for prefix.
func watchLeases(t *testing.T, a *Agent, prefix string) <-chan rpc.Event {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan rpc.Event, 64)
	before := a.store.Watchers()
	go func() {
		_ = a.Watch(ctx, rpc.WatchRequest{Prefix: prefix}, func(ev rpc.Event) error {
			if ev.Op == "lease" {
				ch <- ev
			}
			return nil
		})
	}()
	eventually(t, 5*time.Second, "watch registered", func() error {
		if a.store.Watchers() <= before {
			return errNotYet
		}
		return nil
	})
	return ch
}

func waitLease(t *testing.T, ch <-chan rpc.Event, want string) rpc.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Lease == want {
				return ev
			}
		case <-deadline:
			t.Fatalf("no lease:%s event", want)
		}
	}
}

func TestIsolatedHolderIsSuspectAndSelfFences(t *testing.T) {
	for _, fence := range []bool{false, true} {
		t.Run(fmt.Sprintf("self_fence=%v", fence), func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t, 4, func(c *config.Config) {
				fastDetector(c)
				c.Settle = 50 * time.Millisecond
				c.SelfFence = fence
			})
			holder := l.as[0]
			events := watchLeases(t, holder, "kernel/")
			if r, err := holder.KernelClaim(ctx, "k", rpc.KernelClaim{Keep: true, TTLMillis: 600}); err != nil || !r.Granted {
				t.Fatalf("claim: %+v %v", r, err)
			}
			waitLease(t, events, rpc.LeaseGranted)
			l.partition(t, []int{0}, []int{1, 2, 3})
			waitLease(t, events, rpc.LeaseSuspect)
			if fence {
				waitLease(t, events, rpc.LeaseReleased)
				if k, _ := holder.KernelGet(ctx, "k"); k.Live || !k.Released {
					t.Fatalf("self-fenced lease still held: %+v", k)
				}
				return
			}
			// Without self-fencing the holder keeps renewing past the TTL.
			waitLease(t, events, rpc.LeaseRenewed)
			waitLease(t, events, rpc.LeaseRenewed)
			if k, _ := holder.KernelGet(ctx, "k"); !k.Live || k.Holder != holder.ID() {
				t.Fatalf("suspect holder lost its lease: %+v", k)
			}
		})
	}
}
