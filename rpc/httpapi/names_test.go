package httpapi_test

import (
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/rpc"
)

// TestServerRefusesBadNames checks that every route that creates an entry
// refuses a name outside the rule, saying the rule, before the API sees
// it, while removals of such names still reach the API.
func TestServerRefusesBadNames(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	c := a.client
	noop := func(rpc.SessionEvent) error { return nil }
	for _, tc := range []struct {
		what string
		call func() error
		rule string
	}{
		{"svc set, service", func() error { _, err := c.ServiceSet(ctx, "we b", "w1", rpc.ServiceSet{Status: "up"}); return err }, rpc.NameRule},
		{"svc set, instance", func() error { _, err := c.ServiceSet(ctx, "web", "w 1", rpc.ServiceSet{Status: "up"}); return err }, rpc.NameRule},
		{"bl add, list", func() error { _, err := c.BlacklistAdd(ctx, "my list", "u1", rpc.BlacklistAdd{}); return err }, rpc.NameRule},
		{"bl add, id", func() error { _, err := c.BlacklistAdd(ctx, "fraud", "u 1", rpc.BlacklistAdd{}); return err }, rpc.BlacklistIDRule},
		{"submit, queue", func() error { _, err := c.TaskSubmit(ctx, "my queue", rpc.TaskSubmit{ID: "t1"}); return err }, rpc.NameRule},
		{"submit, id", func() error { _, err := c.TaskSubmit(ctx, "jobs", rpc.TaskSubmit{ID: "t\t1"}); return err }, rpc.NameRule},
		{"submit, no id", func() error { _, err := c.TaskSubmit(ctx, "jobs", rpc.TaskSubmit{}); return err }, rpc.NameRule},
		{"assign", func() error { _, err := c.TaskAssign(ctx, "job 1", rpc.TaskAssign{}); return err }, rpc.NameRule},
		{"claim", func() error { _, err := c.KernelClaim(ctx, "gpu 0", rpc.KernelClaim{}); return err }, rpc.NameRule},
		{"session", func() error { return c.KernelSession(ctx, "gpu 0", rpc.KernelClaim{}, noop) }, rpc.NameRule},
		{"session, once slot", func() error { return c.KernelSession(ctx, "cron", rpc.KernelClaim{Once: "night 1"}, noop) }, rpc.NameRule},
	} {
		err := tc.call()
		if rpc.CodeOf(err) != rpc.CodeBadRequest || !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("%s: %v, want bad_request saying %q", tc.what, err, tc.rule)
		}
	}
	// Nothing was created.
	if ss, _ := c.ServiceList(ctx, "", false); len(ss) != 0 {
		t.Errorf("services: %+v", ss)
	}
	if ts, _ := c.TaskList(ctx, rpc.TaskFilter{}); len(ts) != 0 {
		t.Errorf("tasks: %+v", ts)
	}
	if ks, _ := c.KernelList(ctx); len(ks) != 0 {
		t.Errorf("kernels: %+v", ks)
	}
	if ls, _ := c.BlacklistLists(ctx); len(ls) != 0 {
		t.Errorf("blacklists: %+v", ls)
	}
	// A name outside the rule, held from before it, can still be removed:
	// the request reaches the API (not found here, not a bad request).
	if err := c.ServiceDelete(ctx, "we b", "w1"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("ServiceDelete(we b, w1) = %v, want not_found", err)
	}
	if _, err := c.KernelRelease(ctx, "gpu 0", rpc.KernelRelease{}); rpc.CodeOf(err) == rpc.CodeBadRequest {
		t.Errorf("KernelRelease(gpu 0) = %v, want it to reach the API", err)
	}
	// The names the project uses pass.
	if _, err := c.ServiceSet(ctx, "web", "i-1", rpc.ServiceSet{Status: "up"}); err != nil {
		t.Error(err)
	}
	if _, err := c.TaskSubmit(ctx, "jobs", rpc.TaskSubmit{ID: "q000001"}); err != nil {
		t.Error(err)
	}
	if res, err := c.KernelClaim(ctx, "jupyter-0", rpc.KernelClaim{}); err != nil || !res.Granted {
		t.Errorf("claim jupyter-0: %+v %v", res, err)
	}
}

func TestBlacklistLists(t *testing.T) {
	a := startAgent(t, nil)
	ctx := ctxT(t)
	c := a.client
	ls, err := c.BlacklistLists(ctx)
	if err != nil || ls == nil || len(ls) != 0 {
		t.Fatalf("no lists: %#v %v, want an empty list", ls, err)
	}
	for _, e := range [][2]string{{"fraud", "u1"}, {"fraud", "u2"}, {"tokens", "t1"}, {"gone", "x"}} {
		if _, err := c.BlacklistAdd(ctx, e[0], e[1], rpc.BlacklistAdd{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.BlacklistRemove(ctx, "gone", "x"); err != nil {
		t.Fatal(err)
	}
	ls, err = c.BlacklistLists(ctx)
	equal(t, "lists", ls, []rpc.BlacklistSummary{{List: "fraud", Entries: 2}, {List: "tokens", Entries: 1}})
	if err != nil {
		t.Fatal(err)
	}
}
