package agent

import (
	"context"

	"github.com/rumor-dev/rumor/rpc"
)

// The local API's task methods are the queue service's.

// TaskAssign implements rpc.API (see queue.Service.Assign).
func (a *Agent) TaskAssign(ctx context.Context, id string, req rpc.TaskAssign) (rpc.Task, error) {
	return a.queue.Assign(ctx, id, req)
}

// TaskUpdate implements rpc.API (see queue.Service.Update).
func (a *Agent) TaskUpdate(ctx context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	return a.queue.Update(ctx, id, req)
}

// TaskCancel implements rpc.API (see queue.Service.Cancel).
func (a *Agent) TaskCancel(ctx context.Context, id string) (rpc.Task, error) {
	return a.queue.Cancel(ctx, id)
}

// TaskGet implements rpc.API.
func (a *Agent) TaskGet(ctx context.Context, id string) (rpc.Task, error) {
	return a.queue.Get(ctx, id)
}

// TaskList implements rpc.API.
func (a *Agent) TaskList(ctx context.Context, f rpc.TaskFilter) ([]rpc.Task, error) {
	return a.queue.List(ctx, f)
}

// TaskSubmit implements rpc.API (see queue.Service.Submit).
func (a *Agent) TaskSubmit(ctx context.Context, q string, req rpc.TaskSubmit) (rpc.Task, error) {
	return a.queue.Submit(ctx, q, req)
}

// TaskTake implements rpc.API (see queue.Service.Take).
func (a *Agent) TaskTake(ctx context.Context, q string, req rpc.TaskTake) (rpc.TakeResult, error) {
	return a.queue.Take(ctx, q, req)
}

// TaskTakeSession implements rpc.API (see queue.Service.TakeSession).
func (a *Agent) TaskTakeSession(ctx context.Context, q string, req rpc.TaskTake, fn func(rpc.SessionEvent) error) error {
	return a.queue.TakeSession(ctx, q, req, fn)
}

// TaskTouch implements rpc.API (see queue.Service.Touch).
func (a *Agent) TaskTouch(ctx context.Context, id string, req rpc.TaskTouch) (rpc.Task, error) {
	return a.queue.Touch(ctx, id, req)
}
