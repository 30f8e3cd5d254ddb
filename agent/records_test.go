package agent

import (
	"context"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
)

func TestRecordsListStoredWrites(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 1, nil)
	a := as[0]
	if _, err := a.BlacklistAdd(ctx, "risk", "u1", rpc.BlacklistAdd{}); err != nil {
		t.Fatal(err)
	}
	if err := a.BlacklistRemove(ctx, "risk", "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TaskAssign(ctx, "t1", rpc.TaskAssign{}); err != nil {
		t.Fatal(err)
	}
	rs, err := a.Records(ctx, "bl/")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Key != "bl/risk/u1" || rs[0].Op != "delete" || rs[0].Node != a.ID() || rs[0].HLC == 0 || rs[0].Stamp == "" {
		t.Fatalf("bl records = %+v; want the one delete, stamped by %s", rs, a.ID())
	}
	rs, err = a.Records(ctx, "task/t1")
	if err != nil || len(rs) != 1 || rs[0].Task != "queued" || rs[0].Op != "put" || len(rs[0].Value) == 0 {
		t.Fatalf("task records = %+v, %v", rs, err)
	}
}
