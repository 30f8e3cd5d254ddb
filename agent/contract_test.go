package agent

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/contract"
	"github.com/rumor-dev/rumor/rpc/httpapi"
)

// TestAPIContract serves a real agent (with a peer) through the API contract checker and
// calls every route once with the Client: every answer of the real agent
// (not only the rpc package's fake) must be what rpc/httpapi/openapi.yaml says.
func TestAPIContract(t *testing.T) {
	a := startCluster(t, 2, nil)[0] // a peer, for members and their fields
	checker, err := contract.New(httpapi.New(a, nil).Routes())
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewWithOptions(a, nil, httpapi.Options{Middleware: checker.Middleware(t)})
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := rpc.NewClient(sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// A watch of everything, open while the writes below happen.
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan error, 1)
	lines := make(chan rpc.Event, 1024)
	go func() {
		watched <- c.Watch(wctx, rpc.WatchRequest{Keepalive: 100 * time.Millisecond}, func(ev rpc.Event) error {
			select {
			case lines <- ev:
			default:
			}
			return nil
		})
	}()

	_, err = c.Status(ctx)
	must("status", err)
	_, err = c.Members(ctx)
	must("members", err)

	_, err = c.ServiceSet(ctx, "web", "w1", rpc.ServiceSet{Addr: "10.0.0.1:80", Status: "up", Tags: map[string]string{"zone": "a"}, TTLMillis: 60000})
	must("svc set", err)
	_, err = c.ServiceGet(ctx, "web", "w1")
	must("svc get", err)
	_, err = c.ServiceList(ctx, "web", true)
	must("svc ls", err)
	if _, err := c.ServiceGet(ctx, "web", "none"); rpc.CodeOf(err) != rpc.CodeNotFound {
		t.Errorf("svc get of none: %v", err)
	}

	_, err = c.BlacklistAdd(ctx, "fraud", "u1", rpc.BlacklistAdd{Reason: "chargeback", TTLMillis: 60000})
	must("bl add", err)
	_, ok, err := c.BlacklistHas(ctx, "fraud", "u1")
	must("bl has", err)
	_, absent, err := c.BlacklistHas(ctx, "fraud", "u2")
	must("bl has u2", err)
	if !ok || absent {
		t.Errorf("bl has: u1 %v, u2 %v", ok, absent)
	}
	_, err = c.BlacklistList(ctx, "fraud")
	must("bl ls", err)
	if lists, err := c.BlacklistLists(ctx); err != nil || len(lists) != 1 || lists[0].List != "fraud" {
		t.Errorf("bl ls (the lists): %+v %v", lists, err)
	}

	zero := uint64(0)
	_, err = c.KVPut(ctx, "/config/app/env", rpc.KVPut{Value: "prod", IfVersion: &zero})
	must("kv put", err)
	_, err = c.KVGet(ctx, "/config/app/env")
	must("kv get", err)
	_, err = c.KVList(ctx, "/config/")
	must("kv ls", err)
	if _, err := c.KVPut(ctx, "/config/app/env", rpc.KVPut{Value: "dev", IfVersion: &zero}); rpc.CodeOf(err) != rpc.CodeDenied {
		t.Errorf("kv put with a stale version: %v", err)
	}

	_, err = c.TaskSubmit(ctx, "thumbs", rpc.TaskSubmit{ID: "j1", Payload: []byte("img/1.png"), Priority: 5})
	must("task submit", err)
	took, err := c.TaskTake(ctx, "thumbs", rpc.TaskTake{VisibilityMillis: 60000, WaitMillis: 5000})
	must("task take", err)
	if !took.Taken {
		t.Fatalf("task take: %+v", took)
	}
	_, err = c.TaskTouch(ctx, "j1", rpc.TaskTouch{VisibilityMillis: 60000})
	must("task touch", err)
	_, err = c.TaskUpdate(ctx, "j1", rpc.TaskUpdate{State: "done", Result: "ok"})
	must("task state", err)
	_, err = c.TaskSubmit(ctx, "thumbs", rpc.TaskSubmit{ID: "j2"})
	must("task submit j2", err)
	sess := make(chan rpc.SessionEvent, 16)
	tctx, tcancel := context.WithCancel(ctx)
	tdone := make(chan error, 1)
	go func() {
		tdone <- c.TaskTakeSession(tctx, "thumbs", rpc.TaskTake{VisibilityMillis: 30000, WaitMillis: 5000}, func(ev rpc.SessionEvent) error {
			select {
			case sess <- ev:
			default:
			}
			return nil
		})
	}()
	if ev := nextEvent(t, sess); ev.Event != rpc.SessionGranted || ev.Task == nil {
		t.Fatalf("task session: %+v", ev)
	}
	tcancel()
	must("task session", <-tdone)
	_, err = c.TaskAssign(ctx, "build-7", rpc.TaskAssign{})
	must("task assign", err)
	_, err = c.TaskCancel(ctx, "build-7")
	must("task cancel", err)
	_, err = c.TaskGet(ctx, "j1")
	must("task get", err)
	_, err = c.TaskList(ctx, rpc.TaskFilter{Queue: "thumbs"})
	must("task ls", err)

	claim, err := c.KernelClaim(ctx, "gpu-0", rpc.KernelClaim{TTLMillis: 30000, Job: "train-7"})
	must("kernel claim", err)
	if !claim.Granted {
		t.Fatalf("kernel claim: %+v", claim)
	}
	_, err = c.KernelRenew(ctx, "gpu-0", rpc.KernelRenew{TTLMillis: 30000})
	must("kernel renew", err)
	_, err = c.KernelGet(ctx, "gpu-0")
	must("kernel get", err)
	_, err = c.KernelList(ctx)
	must("kernel ls", err)
	_, err = c.KernelRelease(ctx, "gpu-0", rpc.KernelRelease{})
	must("kernel release", err)
	kctx, kcancel := context.WithCancel(ctx)
	kdone := make(chan error, 1)
	ksess := make(chan rpc.SessionEvent, 16)
	go func() {
		kdone <- c.KernelSession(kctx, "gpu-1", rpc.KernelClaim{TTLMillis: 10000, Job: "j"}, func(ev rpc.SessionEvent) error {
			select {
			case ksess <- ev:
			default:
			}
			return nil
		})
	}()
	if ev := nextEvent(t, ksess); ev.Event != rpc.SessionGranted {
		t.Fatalf("kernel session: %+v", ev)
	}
	kcancel()
	must("kernel session", <-kdone)

	_, err = c.KVHistory(ctx, "/config/app/env")
	must("kv history", err)
	_, err = c.KVDelete(ctx, "/config/app/env", nil)
	must("kv rm", err)
	must("svc rm", c.ServiceDelete(ctx, "web", "w1"))
	must("bl rm", c.BlacklistRemove(ctx, "fraud", "u1"))
	_, err = c.Records(ctx, "svc/")
	must("records", err)
	_, err = c.Explain(ctx, "task/j1")
	must("explain", err)
	var buf bytes.Buffer
	_, err = c.Backup(ctx, &buf)
	must("backup", err)

	// Let a keepalive through, then end the watch.
	deadline := time.After(10 * time.Second)
	for keepalive := false; !keepalive; {
		select {
		case ev := <-lines:
			keepalive = ev.Op == rpc.OpKeepalive
		case <-deadline:
			t.Fatal("no keepalive on the watch")
		}
	}
	wcancel()
	must("watch", <-watched)

	// A route counts once its handler has returned, a little after the
	// client has its answer.
	eventually(t, 10*time.Second, "every route but openapi.json exercised", func() error {
		if missed := checker.Unexercised(); len(missed) != 1 || missed[0] != "GET /v1/openapi.json" {
			return fmt.Errorf("routes not called: %v", missed)
		}
		return nil
	})
	if testing.Verbose() {
		var out bytes.Buffer
		checker.WriteCoverage(&out)
		t.Log("\n" + out.String())
	}
}

func nextEvent(t *testing.T, ch <-chan rpc.SessionEvent) rpc.SessionEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for a session event")
		panic("unreachable")
	}
}
