package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// TestReleasedKernelHasNoExpiry: once released, a lease is shown released
// with no expiry by kernel get and list, though its claim asked an hour.
func TestReleasedKernelHasNoExpiry(t *testing.T) {
	ctx := context.Background()
	cfg := config.LocalConfig(t.TempDir())
	cfg.Settle = 50 * time.Millisecond
	a := startAlone(t, cfg, Options{})
	res, err := a.KernelClaim(ctx, "gpu0", rpc.KernelClaim{TTLMillis: time.Hour.Milliseconds()})
	if err != nil || !res.Granted || res.Kernel.Expires.IsZero() {
		t.Fatalf("claim: %+v %v", res, err)
	}
	k, err := a.KernelRelease(ctx, "gpu0", rpc.KernelRelease{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.KernelGet(ctx, "gpu0")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := a.KernelList(ctx)
	if err != nil || len(ks) != 1 {
		t.Fatalf("list: %+v %v", ks, err)
	}
	for what, k := range map[string]rpc.Kernel{"release": k, "get": got, "list": ks[0]} {
		b, _ := json.Marshal(k)
		if !k.Released || k.Live || !k.Expires.IsZero() || strings.Contains(string(b), `"expires"`) {
			t.Errorf("%s: %s, want released with no expiry", what, b)
		}
	}
}

// TestBlacklistLists: every list with a live id, by name, with its count;
// removed and expired ids are not counted.
func TestBlacklistLists(t *testing.T) {
	ctx := context.Background()
	a := startAlone(t, config.LocalConfig(t.TempDir()), Options{})
	for _, e := range [][2]string{{"tokens", "t1"}, {"fraud", "u1"}, {"fraud", "u2"}, {"fraud-2", "x"}, {"gone", "x"}} {
		if _, err := a.BlacklistAdd(ctx, e[0], e[1], rpc.BlacklistAdd{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.BlacklistAdd(ctx, "fraud", "brief", rpc.BlacklistAdd{TTLMillis: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.BlacklistRemove(ctx, "gone", "x"); err != nil {
		t.Fatal(err)
	}
	want := []rpc.BlacklistSummary{{List: "fraud", Entries: 2}, {List: "fraud-2", Entries: 1}, {List: "tokens", Entries: 1}}
	eventually(t, 5*time.Second, "the 1 ms entry expired", func() error {
		got, err := a.BlacklistLists(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("lists %+v, want %+v", got, want)
		}
		return nil
	})
}
