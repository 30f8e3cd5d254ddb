package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// fastLeases makes claims settle in 50 ms and allows short visibility
// timeouts (down to 150 ms).
func fastLeases(c *config.Config) {
	c.Settle, c.LeaseMargin, c.MaxSkew = 50*time.Millisecond, 100*time.Millisecond, 200*time.Millisecond
}

// taskStates returns the state of every task under prefix on a, by id.
func taskStates(t *testing.T, a *Agent) map[string]rpc.Task {
	t.Helper()
	ts, err := a.TaskList(context.Background(), rpc.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rpc.Task{}
	for _, tk := range ts {
		out[tk.ID] = tk
	}
	return out
}

// TestQueueEachTaskTakenOnce: 3 workers on each of 3 connected agents
// drain a queue of 30 tasks. Every task is taken by exactly one worker,
// ends done, and every agent agrees.
func TestQueueEachTaskTakenOnce(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 3, fastLeases)
	const n = 30
	for i := range n {
		if _, err := as[i%3].TaskSubmit(ctx, "jobs", rpc.TaskSubmit{ID: fmt.Sprintf("t%02d", i), Payload: []byte(fmt.Sprint(i)), Priority: i % 2}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "every agent holds every task", func() error {
		for _, a := range as {
			if got := len(taskStates(t, a)); got != n {
				return fmt.Errorf("%s holds %d tasks", shortID(a.ID()), got)
			}
		}
		return nil
	})
	var (
		mu    sync.Mutex
		taken = map[string][]string{} // id -> workers that took it
		wg    sync.WaitGroup
		errs  = make(chan error, 9)
	)
	for w := range 9 {
		a := as[w%3]
		wg.Go(func() {
			for {
				res, err := a.TaskTake(ctx, "jobs", rpc.TaskTake{VisibilityMillis: 30_000})
				if err != nil {
					errs <- err
					return
				}
				if !res.Taken {
					return
				}
				tk := res.Task
				var num int
				if _, err := fmt.Sscanf(tk.ID, "t%d", &num); err != nil || string(tk.Payload) != fmt.Sprint(num) || tk.Attempt != 1 || tk.Epoch == 0 || tk.Owner != a.ID() {
					errs <- fmt.Errorf("taken task %+v", tk)
					return
				}
				mu.Lock()
				taken[tk.ID] = append(taken[tk.ID], fmt.Sprintf("%s/%d", shortID(a.ID()), w))
				mu.Unlock()
				if _, err := a.TaskUpdate(ctx, tk.ID, rpc.TaskUpdate{State: "done", Result: "ok"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		id := fmt.Sprintf("t%02d", i)
		if len(taken[id]) != 1 {
			t.Errorf("task %s taken by %v, want exactly one worker", id, taken[id])
		}
	}
	eventually(t, 10*time.Second, "every task done on every agent", func() error {
		for _, a := range as {
			for id, tk := range taskStates(t, a) {
				if tk.State != "done" {
					return fmt.Errorf("%s sees %s %s", shortID(a.ID()), id, tk.State)
				}
			}
		}
		return sameState(as, "task/")
	})
	if _, err := as[0].KernelList(ctx); err != nil {
		t.Fatal(err)
	} else if ks, _ := as[0].KernelList(ctx); len(ks) != 0 {
		t.Errorf("kernel ls shows the queue's task leases: %v", ks)
	}
}

// TestQueueRequeueAndDeadLetter: a task whose worker never ends it
// returns to the queue when its visibility timeout passes, with its
// attempt counted, is taken by another node, and after max attempts
// fails as a dead letter.
func TestQueueRequeueAndDeadLetter(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, fastLeases)
	if _, err := as[0].TaskSubmit(ctx, "q", rpc.TaskSubmit{ID: "j", MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the task reaches agent 1", func() error {
		if _, ok := taskStates(t, as[1])["j"]; !ok {
			return errors.New("not yet")
		}
		return nil
	})
	take := func(a *Agent) rpc.TakeResult {
		t.Helper()
		res, err := a.TaskTake(ctx, "q", rpc.TaskTake{VisibilityMillis: 300, WaitMillis: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := take(as[0])
	if !first.Taken || first.Task.Attempt != 1 {
		t.Fatalf("first take: %+v", first)
	}
	// The second take waits until the first attempt's lease has run out.
	second := take(as[1])
	if !second.Taken || second.Task.Attempt != 2 || second.Task.Owner != as[1].ID() || second.Task.Epoch <= first.Task.Epoch {
		t.Fatalf("second take: %+v (first %+v)", second, first.Task)
	}
	// The first worker's late "done" is refused: its lease is gone.
	if _, err := as[0].TaskUpdate(ctx, "j", rpc.TaskUpdate{State: "done"}); err == nil {
		t.Error("a worker whose attempt ended finished the task")
	}
	// Attempts used up: the next take fails the task and takes nothing.
	if third := take(as[0]); third.Taken {
		t.Fatalf("third take of a task with 2 attempts: %+v", third)
	}
	eventually(t, 10*time.Second, "the dead letter on every agent", func() error {
		for _, a := range as {
			ts, err := a.TaskList(ctx, rpc.TaskFilter{State: "failed", Queue: "q"})
			if err != nil {
				return err
			}
			if len(ts) != 1 || !strings.Contains(ts[0].Result, "dead letter") || ts[0].Attempt != 2 {
				return fmt.Errorf("%s: failed tasks %+v", shortID(a.ID()), ts)
			}
		}
		return nil
	})
}

// TestQueueSessionCancelConfirmed: a task taken on a session is held
// while the session lives; a cancel from another node reaches the
// worker's session as cancel-requested, and the task reads cancelled only
// once the worker says so. A queued task is cancelled at once.
func TestQueueSessionCancelConfirmed(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, fastLeases)
	for _, id := range []string{"a", "b"} {
		if _, err := as[0].TaskSubmit(ctx, "q", rpc.TaskSubmit{ID: id, Priority: map[string]int{"a": 1}[id]}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the tasks reach agent 1", func() error {
		if len(taskStates(t, as[1])) != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	sctx, end := context.WithCancel(ctx)
	evs := make(chan rpc.SessionEvent, 16)
	done := make(chan error, 1)
	go func() {
		done <- as[1].TaskTakeSession(sctx, "q", rpc.TaskTake{VisibilityMillis: 1000}, func(ev rpc.SessionEvent) error {
			evs <- ev
			return nil
		})
	}()
	next := func() rpc.SessionEvent {
		t.Helper()
		select {
		case ev := <-evs:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no session event within 20s")
		}
		return rpc.SessionEvent{}
	}
	g := next()
	if g.Event != rpc.SessionGranted || g.Task == nil || g.Task.ID != "a" || g.Session == "" {
		t.Fatalf("first event %+v, want granted with task a (the higher priority)", g)
	}
	// Keepalives hold it past its visibility timeout.
	for range 3 {
		if _, err := as[1].TaskTouch(ctx, "a", rpc.TaskTouch{VisibilityMillis: 1000, Session: g.Session}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond) // the keepalive period of a 1 s lease
	}
	if tk, _ := as[0].TaskGet(ctx, "a"); tk.State != "running" || tk.Owner != as[1].ID() {
		t.Fatalf("task a on agent 0: %+v", tk)
	}
	// Cancel from agent 0: a request until the worker confirms.
	tk, err := as[0].TaskCancel(ctx, "a")
	if err != nil || tk.State != "cancel-requested" {
		t.Fatalf("cancel: %+v %v", tk, err)
	}
	for ev := next(); ev.Event != rpc.SessionCancelRequested; ev = next() {
		if ev.Event != rpc.SessionRenewed {
			t.Fatalf("event %+v before cancel-requested", ev)
		}
	}
	if tk, _ := as[0].TaskGet(ctx, "a"); tk.State != "cancel-requested" {
		t.Fatalf("before the worker's acknowledgement: %s", tk.State)
	}
	if _, err := as[1].TaskUpdate(ctx, "a", rpc.TaskUpdate{State: "cancelled", Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "task a cancelled on agent 0", func() error {
		if tk, _ := as[0].TaskGet(ctx, "a"); tk.State != "cancelled" {
			return fmt.Errorf("state %s", tk.State)
		}
		return nil
	})
	end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// b is still queued: cancelled at once.
	if tk, err := as[0].TaskCancel(ctx, "b"); err != nil || tk.State != "cancelled" {
		t.Fatalf("cancel of a queued task: %+v %v", tk, err)
	}
}

// TestQueueSessionEndRequeues: a session's task returns to the queue as
// soon as the session's client goes away.
func TestQueueSessionEndRequeues(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 1, fastLeases)
	if _, err := as[0].TaskSubmit(ctx, "q", rpc.TaskSubmit{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	sctx, end := context.WithCancel(ctx)
	granted := make(chan rpc.SessionEvent, 1)
	done := make(chan error, 1)
	go func() {
		done <- as[0].TaskTakeSession(sctx, "q", rpc.TaskTake{VisibilityMillis: 60_000}, func(ev rpc.SessionEvent) error {
			if ev.Event == rpc.SessionGranted {
				granted <- ev
			}
			return nil
		})
	}()
	select {
	case <-granted:
	case <-time.After(20 * time.Second):
		t.Fatal("not granted")
	}
	end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err := as[0].TaskTake(ctx, "q", rpc.TaskTake{WaitMillis: 10_000})
	if err != nil || !res.Taken || res.Task.Attempt != 2 {
		t.Fatalf("take after the session ended: %+v %v", res, err)
	}
}

// TestAssignValidated: an unknown node is refused, and of two concurrent
// assignments of one id on two nodes exactly one is told it lost, naming
// the winner that both agents hold.
func TestAssignValidated(t *testing.T) {
	ctx := context.Background()
	as := startCluster(t, 2, fastLeases)
	if _, err := as[0].TaskAssign(ctx, "t", rpc.TaskAssign{Node: "12D3KooWNotAMember"}); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("assign to an unknown node: %v", err)
	}
	for round := range 5 {
		id := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, a := range as {
			wg.Go(func() { _, errs[i] = a.TaskAssign(ctx, id, rpc.TaskAssign{Node: a.ID()}) })
		}
		wg.Wait()
		// Both wrote: one stamp wins everywhere, and the other is told.
		w0, _ := as[0].TaskGet(ctx, id)
		w1, _ := as[1].TaskGet(ctx, id)
		if w0.Owner != w1.Owner {
			t.Fatalf("round %d: agents disagree on the owner: %s vs %s", round, w0.Owner, w1.Owner)
		}
		for i, err := range errs {
			var rpcErr *rpc.Error
			switch {
			case as[i].ID() == w0.Owner && err != nil:
				t.Errorf("round %d: the winner, agent %d, was told %v", round, i, err)
			case as[i].ID() != w0.Owner && (!errors.As(err, &rpcErr) || rpcErr.Code != rpc.CodeDenied || !strings.Contains(err.Error(), "won")):
				t.Errorf("round %d: the loser, agent %d, was told %v", round, i, err)
			}
		}
	}
}
