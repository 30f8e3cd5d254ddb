package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

func TestBLWritersLocalAPI(t *testing.T) {
	ctx := context.Background()
	dirs, ids := presetIdentities(t, 3)
	as := startCluster(t, 3, withIdentities(dirs, func(c *config.Config) { c.BLWriters = ids[:1] }))
	if _, err := as[0].BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatalf("listed writer: %v", err)
	}
	eventually(t, 10*time.Second, "the listed writer's entry everywhere", func() error {
		for _, a := range as {
			if _, ok := a.Store().Get("bl/fraud/u1"); !ok {
				return fmt.Errorf("%s lacks it", shortID(a.ID()))
			}
		}
		return nil
	})
	_, addErr := as[1].BlacklistAdd(ctx, "fraud", "u2", rpc.BlacklistAdd{})
	rmErr := as[2].BlacklistRemove(ctx, "fraud", "u1")
	for _, err := range []error{addErr, rmErr} {
		if rpc.CodeOf(err) != rpc.CodeDenied {
			t.Errorf("unlisted writer: %v, want code %s", err, rpc.CodeDenied)
		}
		if err == nil || !strings.Contains(err.Error(), "not in bl_writers") {
			t.Errorf("unlisted writer: %v, want it to name bl_writers", err)
		}
	}
	for _, a := range as {
		if _, ok := a.Store().Get("bl/fraud/u2"); ok {
			t.Errorf("%s holds the refused add", shortID(a.ID()))
		}
		if e, _ := a.Store().Get("bl/fraud/u1"); e.Winner().Op != crdt.OpPut {
			t.Errorf("%s: the refused remove took effect", shortID(a.ID()))
		}
	}
}
