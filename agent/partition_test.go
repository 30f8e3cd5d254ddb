package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/internal/netcut"
	"github.com/rumor-dev/rumor/rpc"
)

// lab is a cluster whose links can be cut.
type lab struct {
	as     []*Agent
	gaters []*netcut.Gater
}

func newLab(t *testing.T, n int, mod func(*config.Config)) *lab {
	l := &lab{gaters: make([]*netcut.Gater, n)}
	for i := range l.gaters {
		l.gaters[i] = netcut.New()
	}
	l.as = startClusterOpts(t, n, mod, func(i int) Options {
		return Options{HostOptions: []libp2p.Option{libp2p.ConnectionGater(l.gaters[i])}}
	})
	return l
}

// partition cuts every link between the two groups (indexes into l.as)
// and returns once no connection crosses the cut.
func (l *lab) partition(t *testing.T, a, b []int) {
	for _, i := range a {
		for _, j := range b {
			l.block(i, j, true)
			l.block(j, i, true)
		}
	}
	eventually(t, 10*time.Second, "cut in place", func() error {
		crossing := 0
		for _, i := range a {
			for _, j := range b {
				gi, gj := l.as[i].Gossip(), l.as[j].Gossip()
				for _, n := range []struct {
					node *gossip.Node
					peer peer.ID
				}{{gi, gj.ID()}, {gj, gi.ID()}} {
					if n.node.Connected(n.peer) {
						crossing++
						_ = n.node.ClosePeer(n.peer) // e.g. one that was mid-handshake when the block came
					}
				}
			}
		}
		if crossing > 0 {
			return fmt.Errorf("%d links still cross the cut", crossing)
		}
		return nil
	})
}

func (l *lab) block(i, j int, on bool) {
	l.gaters[i].Block(l.as[j].Gossip().ID(), on)
}

// heal lifts every cut; the agents' redialers reconnect by themselves.
func (l *lab) heal() {
	for i := range l.as {
		for j := range l.as {
			l.block(i, j, false)
		}
	}
}

func TestPartitionedLeasesResolveAfterHeal(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 6, func(c *config.Config) {
		c.Settle = 100 * time.Millisecond
		c.RedialMin, c.RedialMax = 50*time.Millisecond, 200*time.Millisecond
		c.AntiEntropy = time.Second
	})
	left, right := []int{0, 1, 2}, []int{3, 4, 5}
	var healTimes, windows []time.Duration
	lastEpoch := uint64(0)
	for round := range 3 {
		l.partition(t, left, right)
		// Both sides grant the same kernel while cut off.
		claimer := map[int]int{0: left[round%3], 1: right[(round+1)%3]}
		events := make(map[int]chan rpc.Event)
		wctx, stop := context.WithCancel(ctx)
		for _, i := range claimer {
			ch := make(chan rpc.Event, 64)
			events[i] = ch
			go func() {
				_ = l.as[i].Watch(wctx, rpc.WatchRequest{Prefix: "kernel/k"}, func(ev rpc.Event) error {
					if ev.Op == "lease" {
						ch <- ev
					}
					return nil
				})
			}()
		}
		results := make(map[int]rpc.ClaimResult)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, i := range claimer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := l.as[i].KernelClaim(ctx, "k", rpc.KernelClaim{Keep: true, TTLMillis: 60_000})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				results[i] = r
				mu.Unlock()
			}()
		}
		wg.Wait()
		bothGranted := time.Now()
		for i, r := range results {
			if !r.Granted {
				t.Fatalf("round %d: agent %d was denied inside its own side: %+v", round, i, r)
			}
			if r.Kernel.Epoch <= lastEpoch {
				t.Fatalf("round %d: epoch went from %d to %d", round, lastEpoch, r.Kernel.Epoch)
			}
		}
		// Heal: within 2 s every agent agrees on one holder.
		l.heal()
		healed := time.Now()
		var holder string
		var epoch uint64
		eventually(t, 2*time.Second, "one holder everywhere after heal", func() error {
			first, _ := l.as[0].KernelGet(ctx, "k")
			for _, a := range l.as {
				k, _ := a.KernelGet(ctx, "k")
				if k.Holder != first.Holder || k.Epoch != first.Epoch || !k.Live {
					return fmt.Errorf("%s sees %s epoch %d, %s sees %s epoch %d", shortID(l.as[0].ID()), shortID(first.Holder), first.Epoch, shortID(a.ID()), shortID(k.Holder), k.Epoch)
				}
			}
			holder, epoch = first.Holder, first.Epoch
			return nil
		})
		healTimes = append(healTimes, time.Since(healed))
		if epoch < lastEpoch {
			t.Fatalf("round %d: agreed epoch %d is behind %d", round, epoch, lastEpoch)
		}
		lastEpoch = epoch
		// The loser was told.
		for _, i := range claimer {
			if l.as[i].ID() == holder {
				continue
			}
			deadline := time.After(5 * time.Second)
		wait:
			for {
				select {
				case ev := <-events[i]:
					if ev.Lease == rpc.LeaseLost {
						windows = append(windows, time.Since(bothGranted))
						break wait
					}
				case <-deadline:
					t.Fatalf("round %d: loser %d got no lost event", round, i)
				}
			}
		}
		stop()
		for _, a := range l.as {
			if a.ID() == holder {
				if _, err := a.KernelRelease(ctx, "k", rpc.KernelRelease{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		eventually(t, 5*time.Second, "release everywhere", func() error {
			for _, a := range l.as {
				if k, _ := a.KernelGet(ctx, "k"); k.Live {
					return fmt.Errorf("%s still sees %+v", shortID(a.ID()), k)
				}
			}
			return nil
		})
	}
	slices.Sort(healTimes)
	slices.Sort(windows)
	t.Logf("agreement after heal: p50 %v max %v; double-grant window (both granted until the loser's lost event, partition held ~0 s after the grants): p50 %v max %v (%d rounds)",
		healTimes[len(healTimes)/2].Round(time.Millisecond), healTimes[len(healTimes)-1].Round(time.Millisecond),
		windows[len(windows)/2].Round(time.Millisecond), windows[len(windows)-1].Round(time.Millisecond), len(windows))
}
