package agent

import (
	"context"
	"errors"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store/watch"
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

// TaskAssign implements rpc.API: record which node runs the task.
func (a *Agent) TaskAssign(_ context.Context, id string, req rpc.TaskAssign) (rpc.Task, error) {
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
	var cur *tasks.Task
	if t, err := a.task(id); err == nil {
		cur = &t
	}
	d, err := tasks.Assign(cur, id, owner)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	d, _, err = a.write(d)
	return a.taskView(d), err
}

// TaskUpdate implements rpc.API: the owner reports progress.
func (a *Agent) TaskUpdate(ctx context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
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
// task runs. The owner's agent turns the request into "cancelled".
func (a *Agent) TaskCancel(_ context.Context, id string) (rpc.Task, error) {
	cur, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	d, ok := tasks.Cancel(cur, id, a.self)
	if !ok {
		return a.taskView(cur.Delta), nil
	}
	d, _, err = a.write(d)
	return a.taskView(d), err
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
func (a *Agent) TaskList(context.Context) ([]rpc.Task, error) {
	out := []rpc.Task{}
	for _, e := range a.store.List("task/") {
		out = append(out, a.taskView(e.Winner()))
	}
	return out, nil
}

// taskLoop acknowledges cancel requests for tasks this node owns: when one
// arrives, the owner's watchers have seen it (the same event), and the
// agent writes cancelled.
func (a *Agent) taskLoop(ctx context.Context) {
	for {
		w := a.store.Watch("task/", 1024)
		for _, e := range a.store.List("task/") { // what arrived before the watch
			a.acknowledge(e.Winner())
		}
		if !a.drainTasks(ctx, w) {
			return
		}
		a.log.Warn("task watcher fell behind; resubscribing", "err", w.Err())
	}
}

// drainTasks handles task events until ctx ends (false) or w is dropped (true).
func (a *Agent) drainTasks(ctx context.Context, w *watch.Watcher) bool {
	defer w.Close()
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.C():
			if !ok {
				return true
			}
			a.acknowledge(ev.Entry.Winner())
		}
	}
}

func (a *Agent) acknowledge(cur crdt.Delta) {
	d, ok := tasks.Acknowledge(cur, a.self)
	if !ok {
		return
	}
	if _, _, err := a.write(d); err != nil && !errors.Is(err, ErrStopped) {
		a.log.Warn("write cancelled", "task", cur.Key, "err", err)
	}
}
