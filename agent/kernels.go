package agent

import (
	"context"
	"slices"
	"strings"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/tasks"
)

// The local API's kernel methods are the kernels service's.

// reserved refuses a client's claim of a kernel id that names a task's
// lease: those are the work queue's (task take).
func reserved(id string) error {
	if strings.HasPrefix(id, tasks.LeasePrefix) {
		return rpc.BadRequest("kernel id %q: ids beginning with %q are the work queue's task leases; take the task (rumor task take) instead", id, tasks.LeasePrefix)
	}
	return nil
}

// KernelClaim implements rpc.API (see kernels.Service.Claim).
func (a *Agent) KernelClaim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	if err := reserved(id); err != nil {
		return rpc.ClaimResult{}, err
	}
	return a.kernels.Claim(ctx, id, req)
}

// KernelSession implements rpc.API (see kernels.Service.Session).
func (a *Agent) KernelSession(ctx context.Context, id string, req rpc.KernelClaim, fn func(rpc.SessionEvent) error) error {
	if err := reserved(id); err != nil {
		return err
	}
	return a.kernels.Session(ctx, id, req, fn)
}

// KernelRenew implements rpc.API (see kernels.Service.Renew).
func (a *Agent) KernelRenew(ctx context.Context, id string, req rpc.KernelRenew) (rpc.Kernel, error) {
	return a.kernels.Renew(ctx, id, req)
}

// KernelRelease implements rpc.API (see kernels.Service.Release).
func (a *Agent) KernelRelease(ctx context.Context, id string, req rpc.KernelRelease) (rpc.Kernel, error) {
	return a.kernels.Release(ctx, id, req)
}

// KernelGet implements rpc.API.
func (a *Agent) KernelGet(ctx context.Context, id string) (rpc.Kernel, error) {
	return a.kernels.Get(ctx, id)
}

// KernelList implements rpc.API: the kernels, without the work queue's
// task leases.
func (a *Agent) KernelList(ctx context.Context) ([]rpc.Kernel, error) {
	ks, err := a.kernels.List(ctx)
	return slices.DeleteFunc(ks, func(k rpc.Kernel) bool { return strings.HasPrefix(k.ID, tasks.LeasePrefix) }), err
}
