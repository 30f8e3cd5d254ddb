package agent

import (
	"context"
	"errors"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/tasks"
)

// task returns task id's current write.
func (a *Agent) task(id string) (tasks.Task, error) {
	if err := badName("task id", id); err != nil {
		return tasks.Task{}, err
	}
	e, ok := a.store.Get(crdt.TaskKey(id))
	if !ok {
		return tasks.Task{}, rpc.NotFound("no task %s", id)
	}
	return tasks.Decode(e.Winner()), nil
}

// taskError turns a refusal of the task rules into the API's error.
func taskError(err error) error {
	switch {
	case errors.Is(err, tasks.ErrDenied):
		return rpc.Denied("%v", err)
	case errors.Is(err, tasks.ErrBadState):
		return rpc.BadRequest("%v", err)
	}
	return err
}

// TaskAssign implements rpc.API: record which node runs the task. The
// node must be a member this agent knows. Two concurrent assignments of
// one id are decided by the register's rule (the later stamp wins); the
// agent waits a settle window and exchanges the task with its peers
// before it answers, and a losing assignment is denied, naming the
// winner.
func (a *Agent) TaskAssign(ctx context.Context, id string, req rpc.TaskAssign) (rpc.Task, error) {
	if err := badName("task id", id); err != nil {
		return rpc.Task{}, err
	}
	owner := req.Node
	if owner == "" {
		owner = a.self
	}
	if err := badName("node", owner); err != nil {
		return rpc.Task{}, err
	}
	if a.mon.Table().State(owner) == 0 {
		return rpc.Task{}, rpc.BadRequest("node %s is not a member this agent knows (see rumor members)", owner)
	}
	var cur *tasks.Task
	if t, err := a.task(id); err == nil {
		cur = &t
	}
	d, err := tasks.Assign(cur, id, owner)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if d, _, err = a.write(d); err != nil {
		return rpc.Task{}, err
	}
	if err := a.kernels.Settle(ctx, d.Key); err != nil {
		return rpc.Task{}, err
	}
	won, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if won.Delta.Stamp != d.Stamp {
		return rpc.Task{}, rpc.Denied("task %s: a concurrent write by node %s won (%s on node %s); this assignment to node %s lost",
			id, won.Delta.Stamp.Node, won.Delta.Task, dash(won.Value.Owner), owner)
	}
	return a.taskView(d), nil
}

// dash shows an empty name as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TaskUpdate implements rpc.API: the owner reports progress. A queue's
// task is ended (done, failed, cancelled) by its worker, who must still
// hold the attempt's lease.
func (a *Agent) TaskUpdate(ctx context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if cur.Value.Queue != "" {
		return a.finish(ctx, cur, req)
	}
	d, err := tasks.Update(cur, id, a.self, req.State, req.Result)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	d, changed, err := a.write(d)
	if err == nil && !changed {
		return a.TaskGet(ctx, id) // a cancel request outranks "running"
	}
	return a.taskView(d), err
}

// TaskCancel implements rpc.API: from any node, without knowing where the
// task runs. A task that a worker may be running gets a request, which
// becomes cancelled only when the worker acknowledges it (its owner sets
// cancelled); one that no worker runs (still queued, its worker's lease
// gone, its owner node dead) is cancelled at once.
func (a *Agent) TaskCancel(_ context.Context, id string) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	d, ok := tasks.Cancel(cur, id, a.self, a.hasWorker(cur))
	if !ok {
		return a.taskView(cur.Delta), nil
	}
	d, _, err = a.write(d)
	return a.taskView(d), err
}

// hasWorker reports whether a worker may be running t: a queue's task
// whose attempt's lease is held, or an assigned task past queued whose
// owner node is not dead.
func (a *Agent) hasWorker(t tasks.Task) bool {
	if t.Value.Queue != "" {
		return a.held(t)
	}
	return t.Delta.Task != crdt.TaskQueued && !a.ownerDead(t.Value.Owner)
}

// TaskGet implements rpc.API.
func (a *Agent) TaskGet(_ context.Context, id string) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	return a.taskView(cur.Delta), nil
}

// TaskList implements rpc.API.
func (a *Agent) TaskList(_ context.Context, f rpc.TaskFilter) ([]rpc.Task, error) {
	if f.State != "" {
		if _, ok := crdt.ParseTaskState(f.State); !ok {
			return nil, rpc.BadRequest("bad task state %q: want queued, running, cancel-requested, done, failed or cancelled", f.State)
		}
	}
	out := []rpc.Task{}
	for _, e := range a.store.List("task/") {
		t := a.taskView(e.Winner())
		if (f.State == "" || t.State == f.State) && (f.Queue == "" || t.Queue == f.Queue) && (f.Owner == "" || t.Owner == f.Owner) {
			out = append(out, t)
		}
	}
	return out, nil
}
