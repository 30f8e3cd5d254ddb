package agent

import (
	"context"

	"github.com/rumor-dev/rumor/rpc"
)

// The local API's kernel methods are the kernels service's.

// KernelClaim implements rpc.API (see kernels.Service.Claim).
func (a *Agent) KernelClaim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	return a.kernels.Claim(ctx, id, req)
}

// KernelSession implements rpc.API (see kernels.Service.Session).
func (a *Agent) KernelSession(ctx context.Context, id string, req rpc.KernelClaim, fn func(rpc.SessionEvent) error) error {
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

// KernelList implements rpc.API.
func (a *Agent) KernelList(ctx context.Context) ([]rpc.Kernel, error) { return a.kernels.List(ctx) }
