// Package rpctest provides Fake, an in-memory rpc.API for tests of code that
// talks to the agent (rpc, cli) without a store or a network.
package rpctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

var _ rpc.API = (*Fake)(nil)

// DefaultTTL is the lease TTL Fake uses when a claim or renew names none.
const DefaultTTL = 10 * time.Second

// watchBuffer is how many events a watcher may lag behind before Fake drops
// it, as the agent drops a slow watcher.
const watchBuffer = 256

// ErrSlowWatcher is why Fake ends a watch whose consumer fell behind.
var ErrSlowWatcher = errors.New("rpctest: watcher fell behind")

// Fake is an in-memory rpc.API for one node. Writes act on maps and emit
// watch events, following the rules of DESIGN.md closely enough for clients'
// tests: only the owner changes or deletes its svc entries, a kernel held
// live by another node is denied, a terminal task state is never undone.
// It is safe for concurrent use.
type Fake struct {
	node string
	now  func() time.Time

	mu       sync.Mutex
	started  time.Time
	members  []rpc.Member
	services map[string]rpc.Service // svc/<service>/<instance>
	entries  map[string]rpc.BlacklistEntry
	tasks    map[string]rpc.Task
	kernels  map[string]rpc.Kernel
	kv       kvState
	errs     map[string]error
	hooks    map[string]func(context.Context) error
	watchers map[*watcher]struct{}
	// watches are the requests of every Watch call, in order.
	watches []rpc.WatchRequest
	seq     uint64
	changed chan struct{} // closed and replaced when watchers change
}

type watcher struct {
	prefix  string
	events  chan rpc.Event
	dropped chan struct{}
}

// New returns a Fake for the node with id node, reading time from now (nil
// for time.Now).
func New(node string, now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{
		node:     node,
		now:      now,
		started:  now(),
		members:  []rpc.Member{{Node: node, Self: true, Connected: true, Version: "test"}},
		services: map[string]rpc.Service{},
		entries:  map[string]rpc.BlacklistEntry{},
		tasks:    map[string]rpc.Task{},
		kernels:  map[string]rpc.Kernel{},
		errs:     map[string]error{},
		hooks:    map[string]func(context.Context) error{},
		watchers: map[*watcher]struct{}{},
		changed:  make(chan struct{}),
	}
}

// Node returns the fake's node id.
func (f *Fake) Node() string { return f.node }

// SetError makes every later call of the named API method (e.g.
// "ServiceGet") return err; a nil err clears it.
func (f *Fake) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// SetHook makes every later call of the named API method first call fn with
// the call's ctx, outside the fake's lock, and fail with fn's error if it is
// not nil. Use it to block a call or to see its ctx. A nil fn clears it.
func (f *Fake) SetHook(method string, fn func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn == nil {
		delete(f.hooks, method)
		return
	}
	f.hooks[method] = fn
}

// before runs the hook and returns the error set for method, if any.
func (f *Fake) before(ctx context.Context, method string) error {
	f.mu.Lock()
	hook, err := f.hooks[method], f.errs[method]
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(ctx); herr != nil {
			return herr
		}
	}
	return err
}

// SetMembers replaces the member list.
func (f *Fake) SetMembers(ms []rpc.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = slices.Clone(ms)
}

// PutService stores s as is, as if it had arrived from its owner.
func (f *Fake) PutService(s rpc.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[svcKey(s.Service, s.Instance)] = s
}

// PutKernel stores k as is, as if its holder's claim had arrived.
func (f *Fake) PutKernel(k rpc.Kernel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kernels[k.ID] = k
}

// PutTask stores t as is.
func (f *Fake) PutTask(t rpc.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[t.ID] = t
}

// Emit sends ev to every watcher whose prefix matches ev.Key, as a write
// would. A watcher that has fallen watchBuffer events behind is dropped.
func (f *Fake) Emit(ev rpc.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(ev)
}

// Watchers returns the number of active watches.
func (f *Fake) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// WaitWatchers blocks until exactly n watches are active or ctx is done.
func (f *Fake) WaitWatchers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, ch := len(f.watchers), f.changed
		f.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("rpctest: waiting for %d watchers (have %d): %w", n, got, ctx.Err())
		}
	}
}

// Status implements rpc.API.
func (f *Fake) Status(ctx context.Context) (rpc.Status, error) {
	if err := f.before(ctx, "Status"); err != nil {
		return rpc.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return rpc.Status{
		Node:     f.node,
		Cluster:  "test",
		Version:  "test",
		Commit:   "0123456789abcdef0123456789abcdef01234567",
		Addrs:    []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + f.node},
		Peers:    len(f.members) - 1,
		Keys:     len(f.services) + len(f.entries) + len(f.tasks) + len(f.kernels),
		Watchers: len(f.watchers),
		Started:  f.started,
	}, nil
}

// Members implements rpc.API.
func (f *Fake) Members(ctx context.Context) ([]rpc.Member, error) {
	if err := f.before(ctx, "Members"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), nil
}

// ServiceSet implements rpc.API.
func (f *Fake) ServiceSet(ctx context.Context, service, instance string, req rpc.ServiceSet) (rpc.Service, error) {
	if err := f.before(ctx, "ServiceSet"); err != nil {
		return rpc.Service{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Status == "" {
		return rpc.Service{}, rpc.BadRequest("status must not be empty")
	}
	if req.TTLMillis < 0 {
		return rpc.Service{}, rpc.BadRequest("ttl must not be negative")
	}
	k := svcKey(service, instance)
	if old, ok := f.services[k]; ok && old.Owner != f.node {
		return rpc.Service{}, rpc.Denied("%s is owned by node %s", k, old.Owner)
	}
	now := f.now()
	s := rpc.Service{
		Service: service, Instance: instance, Addr: req.Addr, Status: req.Status,
		Tags: maps.Clone(req.Tags), Owner: f.node, Updated: now,
	}
	if req.TTLMillis > 0 {
		s.Expires = now.Add(time.Duration(req.TTLMillis) * time.Millisecond)
	}
	f.services[k] = s
	f.emitLocked(f.event(k, "put", f.viewService(s, now)))
	return f.viewService(s, now), nil
}

// ServiceDelete implements rpc.API.
func (f *Fake) ServiceDelete(ctx context.Context, service, instance string) error {
	if err := f.before(ctx, "ServiceDelete"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := svcKey(service, instance)
	old, ok := f.services[k]
	if !ok {
		return rpc.NotFound("no service instance %s", k)
	}
	if old.Owner != f.node {
		return rpc.Denied("%s is owned by node %s", k, old.Owner)
	}
	delete(f.services, k)
	f.emitLocked(f.event(k, "delete", nil))
	return nil
}

// ServiceGet implements rpc.API.
func (f *Fake) ServiceGet(ctx context.Context, service, instance string) (rpc.Service, error) {
	if err := f.before(ctx, "ServiceGet"); err != nil {
		return rpc.Service{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := svcKey(service, instance)
	s, ok := f.services[k]
	if !ok {
		return rpc.Service{}, rpc.NotFound("no service instance %s", k)
	}
	return f.viewService(s, f.now()), nil
}

// ServiceList implements rpc.API.
func (f *Fake) ServiceList(ctx context.Context, service string, upOnly bool) ([]rpc.Service, error) {
	if err := f.before(ctx, "ServiceList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var out []rpc.Service
	for _, k := range slices.Sorted(maps.Keys(f.services)) {
		s := f.viewService(f.services[k], now)
		if (service == "" || s.Service == service) && (!upOnly || s.Up) {
			out = append(out, s)
		}
	}
	return out, nil
}

// BlacklistAdd implements rpc.API.
func (f *Fake) BlacklistAdd(ctx context.Context, list, id string, req rpc.BlacklistAdd) (rpc.BlacklistEntry, error) {
	if err := f.before(ctx, "BlacklistAdd"); err != nil {
		return rpc.BlacklistEntry{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.TTLMillis < 0 {
		return rpc.BlacklistEntry{}, rpc.BadRequest("ttl must not be negative")
	}
	now := f.now()
	e := rpc.BlacklistEntry{List: list, ID: id, Reason: req.Reason, AddedBy: f.node, Added: now}
	if req.TTLMillis > 0 {
		e.Expires = now.Add(time.Duration(req.TTLMillis) * time.Millisecond)
	}
	k := blKey(list, id)
	f.entries[k] = e
	f.emitLocked(f.event(k, "put", e))
	return e, nil
}

// BlacklistRemove implements rpc.API.
func (f *Fake) BlacklistRemove(ctx context.Context, list, id string) error {
	if err := f.before(ctx, "BlacklistRemove"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := blKey(list, id)
	if _, ok := f.liveEntry(k); !ok {
		return rpc.NotFound("%s is not on list %s", id, list)
	}
	delete(f.entries, k)
	f.emitLocked(f.event(k, "delete", nil))
	return nil
}

// BlacklistHas implements rpc.API.
func (f *Fake) BlacklistHas(ctx context.Context, list, id string) (rpc.BlacklistEntry, bool, error) {
	if err := f.before(ctx, "BlacklistHas"); err != nil {
		return rpc.BlacklistEntry{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.liveEntry(blKey(list, id))
	return e, ok, nil
}

// BlacklistList implements rpc.API.
func (f *Fake) BlacklistList(ctx context.Context, list string) ([]rpc.BlacklistEntry, error) {
	if err := f.before(ctx, "BlacklistList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rpc.BlacklistEntry
	for _, k := range slices.Sorted(maps.Keys(f.entries)) {
		if e, ok := f.liveEntry(k); ok && e.List == list {
			out = append(out, e)
		}
	}
	return out, nil
}

// BlacklistLists implements rpc.API.
func (f *Fake) BlacklistLists(ctx context.Context) ([]rpc.BlacklistSummary, error) {
	if err := f.before(ctx, "BlacklistLists"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]int{}
	for k := range f.entries {
		if e, ok := f.liveEntry(k); ok {
			counts[e.List]++
		}
	}
	var out []rpc.BlacklistSummary
	for _, l := range slices.Sorted(maps.Keys(counts)) {
		out = append(out, rpc.BlacklistSummary{List: l, Entries: counts[l]})
	}
	return out, nil
}

// TaskAssign implements rpc.API.
func (f *Fake) TaskAssign(ctx context.Context, id string, req rpc.TaskAssign) (rpc.Task, error) {
	if err := f.before(ctx, "TaskAssign"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.tasks[id]; ok && !terminal(old.State) {
		return rpc.Task{}, rpc.Denied("task %s is already assigned to node %s (%s)", id, old.Owner, old.State)
	}
	owner := req.Node
	if owner == "" {
		owner = f.node
	}
	t := rpc.Task{ID: id, Owner: owner, State: "queued", UpdatedBy: f.node, Updated: f.now()}
	f.tasks[id] = t
	f.emitLocked(f.event(taskKey(id), "put", t))
	return t, nil
}

// TaskUpdate implements rpc.API.
func (f *Fake) TaskUpdate(ctx context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	if err := f.before(ctx, "TaskUpdate"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.State {
	case "running", "done", "failed", "cancelled":
	default:
		return rpc.Task{}, rpc.BadRequest("bad task state %q: want running, done, failed or cancelled", req.State)
	}
	t, ok := f.tasks[id]
	if !ok {
		return rpc.Task{}, rpc.NotFound("no task %s", id)
	}
	if t.Owner != f.node {
		return rpc.Task{}, rpc.Denied("task %s is owned by node %s", id, t.Owner)
	}
	if terminal(t.State) {
		return rpc.Task{}, rpc.Denied("task %s is already %s", id, t.State)
	}
	t.State, t.Result, t.UpdatedBy, t.Updated = req.State, req.Result, f.node, f.now()
	f.tasks[id] = t
	f.emitLocked(f.event(taskKey(id), "put", t))
	return t, nil
}

// TaskCancel implements rpc.API.
func (f *Fake) TaskCancel(ctx context.Context, id string) (rpc.Task, error) {
	if err := f.before(ctx, "TaskCancel"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return rpc.Task{}, rpc.NotFound("no task %s", id)
	}
	if terminal(t.State) {
		return t, nil
	}
	t.State, t.UpdatedBy, t.Updated = "cancel-requested", f.node, f.now()
	f.tasks[id] = t
	f.emitLocked(f.event(taskKey(id), "put", t))
	return t, nil
}

// TaskGet implements rpc.API.
func (f *Fake) TaskGet(ctx context.Context, id string) (rpc.Task, error) {
	if err := f.before(ctx, "TaskGet"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return rpc.Task{}, rpc.NotFound("no task %s", id)
	}
	return t, nil
}

// TaskList implements rpc.API.
func (f *Fake) TaskList(ctx context.Context, filter rpc.TaskFilter) ([]rpc.Task, error) {
	if err := f.before(ctx, "TaskList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rpc.Task
	for _, k := range slices.Sorted(maps.Keys(f.tasks)) {
		t := f.tasks[k]
		if (filter.State == "" || t.State == filter.State) && (filter.Queue == "" || t.Queue == filter.Queue) && (filter.Owner == "" || t.Owner == filter.Owner) {
			out = append(out, t)
		}
	}
	return out, nil
}

// TaskSubmit implements rpc.API.
func (f *Fake) TaskSubmit(ctx context.Context, queue string, req rpc.TaskSubmit) (rpc.Task, error) {
	if err := f.before(ctx, "TaskSubmit"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.tasks[req.ID]; ok {
		return rpc.Task{}, rpc.Denied("task %s exists (%s); pick another id", req.ID, old.State)
	}
	t := rpc.Task{ID: req.ID, State: "queued", Queue: queue, Payload: req.Payload, Priority: req.Priority, MaxAttempts: max(req.MaxAttempts, 3), UpdatedBy: f.node, Updated: f.now()}
	f.tasks[req.ID] = t
	f.emitLocked(f.event(taskKey(req.ID), "put", t))
	return t, nil
}

// TaskTake implements rpc.API: the fake takes the queued task of queue
// with the highest priority, then the smallest id.
func (f *Fake) TaskTake(ctx context.Context, queue string, _ rpc.TaskTake) (rpc.TakeResult, error) {
	if err := f.before(ctx, "TaskTake"); err != nil {
		return rpc.TakeResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var best *rpc.Task
	for _, k := range slices.Sorted(maps.Keys(f.tasks)) {
		t := f.tasks[k]
		if t.Queue == queue && t.State == "queued" && (best == nil || t.Priority > best.Priority) {
			best = &t
		}
	}
	if best == nil {
		return rpc.TakeResult{}, nil
	}
	t := *best
	t.State, t.Owner, t.Attempt, t.Epoch, t.UpdatedBy, t.Updated = "running", f.node, t.Attempt+1, t.Epoch+1, f.node, f.now()
	f.tasks[t.ID] = t
	f.emitLocked(f.event(taskKey(t.ID), "put", t))
	return rpc.TakeResult{Taken: true, Task: &t}, nil
}

// TaskTakeSession implements rpc.API: a take (TaskTake) held until ctx
// ends, when the task is queued again unless it ended.
func (f *Fake) TaskTakeSession(ctx context.Context, queue string, req rpc.TaskTake, fn func(rpc.SessionEvent) error) error {
	res, err := f.TaskTake(ctx, queue, req)
	if err != nil {
		return err
	}
	if !res.Taken {
		return fn(rpc.SessionEvent{Event: rpc.SessionDenied})
	}
	if err := fn(rpc.SessionEvent{Event: rpc.SessionGranted, Session: "fake-session", Task: res.Task}); err != nil {
		return err
	}
	<-ctx.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tasks[res.Task.ID]; t.State == "running" && t.Epoch == res.Task.Epoch {
		t.State = "queued"
		f.tasks[t.ID] = t
	}
	return nil
}

// TaskTouch implements rpc.API.
func (f *Fake) TaskTouch(ctx context.Context, id string, _ rpc.TaskTouch) (rpc.Task, error) {
	if err := f.before(ctx, "TaskTouch"); err != nil {
		return rpc.Task{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	switch {
	case !ok:
		return rpc.Task{}, rpc.NotFound("no task %s", id)
	case t.Queue == "" || t.State != "running" || t.Owner != f.node:
		return rpc.Task{}, rpc.Denied("task %s is %s on node %s: nothing to touch", id, t.State, t.Owner)
	}
	return t, nil
}

// KernelClaim implements rpc.API. A kernel held live by another node is
// denied at once (the fake has no settle window).
func (f *Fake) KernelClaim(ctx context.Context, id string, req rpc.KernelClaim) (rpc.ClaimResult, error) {
	if err := f.before(ctx, "KernelClaim"); err != nil {
		return rpc.ClaimResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl, err := leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.ClaimResult{}, err
	}
	now := f.now()
	k := f.viewKernel(f.kernels[id], now)
	if k.Live && k.Holder != f.node {
		return rpc.ClaimResult{Granted: false, Kernel: k}, nil
	}
	if !k.Live {
		k = rpc.Kernel{ID: id, Epoch: k.Epoch + 1, Holder: f.node, Granted: now}
	}
	k.Job, k.Expires = req.Job, now.Add(ttl)
	f.kernels[id] = k
	k = f.viewKernel(k, now)
	f.emitLocked(f.event(kernelKey(id), "claim", k))
	return rpc.ClaimResult{Granted: true, Kernel: k}, nil
}

// KernelRenew implements rpc.API.
func (f *Fake) KernelRenew(ctx context.Context, id string, req rpc.KernelRenew) (rpc.Kernel, error) {
	if err := f.before(ctx, "KernelRenew"); err != nil {
		return rpc.Kernel{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl, err := leaseTTL(req.TTLMillis)
	if err != nil {
		return rpc.Kernel{}, err
	}
	k, err := f.heldLocked(id)
	if err != nil {
		return rpc.Kernel{}, err
	}
	now := f.now()
	k.Expires = now.Add(ttl)
	f.kernels[id] = k
	k = f.viewKernel(k, now)
	f.emitLocked(f.event(kernelKey(id), "renew", k))
	return k, nil
}

// KernelSession implements rpc.API: a claim (never waiting), then, if
// granted, the session holds the lease until ctx is done and releases it.
func (f *Fake) KernelSession(ctx context.Context, id string, req rpc.KernelClaim, fn func(rpc.SessionEvent) error) error {
	res, err := f.KernelClaim(ctx, id, req)
	if err != nil {
		return err
	}
	if !res.Granted {
		return fn(rpc.SessionEvent{Event: rpc.SessionDenied, Kernel: res.Kernel})
	}
	ttl, _ := leaseTTL(req.TTLMillis)
	if err := fn(rpc.SessionEvent{Event: rpc.SessionGranted, Session: "fake-session", TTLMillis: ttl.Milliseconds(), Kernel: res.Kernel}); err != nil {
		return err
	}
	<-ctx.Done()
	// Release the session's lease only: its client may have released it
	// and another session claimed the kernel since.
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := f.kernels[id]; k.Epoch == res.Kernel.Epoch && !k.Released {
		k.Released = true
		f.kernels[id] = k
		f.emitLocked(f.event(kernelKey(id), "release", f.viewKernel(k, f.now())))
	}
	return nil
}

// KernelRelease implements rpc.API.
func (f *Fake) KernelRelease(ctx context.Context, id string, _ rpc.KernelRelease) (rpc.Kernel, error) {
	if err := f.before(ctx, "KernelRelease"); err != nil {
		return rpc.Kernel{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k, err := f.heldLocked(id)
	if err != nil {
		return rpc.Kernel{}, err
	}
	k.Released = true
	f.kernels[id] = k
	k = f.viewKernel(k, f.now())
	f.emitLocked(f.event(kernelKey(id), "release", k))
	return k, nil
}

// KernelGet implements rpc.API.
func (f *Fake) KernelGet(ctx context.Context, id string) (rpc.Kernel, error) {
	if err := f.before(ctx, "KernelGet"); err != nil {
		return rpc.Kernel{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.kernels[id]
	if !ok {
		return rpc.Kernel{}, rpc.NotFound("no kernel %s", id)
	}
	return f.viewKernel(k, f.now()), nil
}

// KernelList implements rpc.API.
func (f *Fake) KernelList(ctx context.Context) ([]rpc.Kernel, error) {
	if err := f.before(ctx, "KernelList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var out []rpc.Kernel
	for _, k := range slices.Sorted(maps.Keys(f.kernels)) {
		out = append(out, f.viewKernel(f.kernels[k], now))
	}
	return out, nil
}

// WatchRequests returns the requests of the Watch calls so far, in order.
func (f *Fake) WatchRequests() []rpc.WatchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.watches)
}

// Watch implements rpc.API. It returns nil when ctx is done, fn's error, or
// ErrSlowWatcher if the watcher fell behind. Unlike an agent it sends
// changes only: no snapshot, synced, keepalive or resync lines, no cursors,
// and it ignores req.Since.
func (f *Fake) Watch(ctx context.Context, req rpc.WatchRequest, fn func(rpc.Event) error) error {
	prefix := req.Prefix
	if err := f.before(ctx, "Watch"); err != nil {
		return err
	}
	w := &watcher{prefix: prefix, events: make(chan rpc.Event, watchBuffer), dropped: make(chan struct{})}
	f.mu.Lock()
	f.watches = append(f.watches, req)
	f.watchers[w] = struct{}{}
	f.notifyLocked()
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, w)
		f.notifyLocked()
		f.mu.Unlock()
	}()
	for {
		// Deliver what is queued before noticing a drop, in order.
		select {
		case ev := <-w.events:
			if err := fn(ev); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.dropped:
			return ErrSlowWatcher
		case ev := <-w.events:
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

func (f *Fake) emitLocked(ev rpc.Event) {
	for w := range f.watchers {
		if !strings.HasPrefix(ev.Key, w.prefix) {
			continue
		}
		select {
		case <-w.dropped:
		default:
			select {
			case w.events <- ev:
			default:
				close(w.dropped)
			}
		}
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// event builds an event for a write by this node, stamped in order.
func (f *Fake) event(key, op string, value any) rpc.Event {
	f.seq++
	now := f.now()
	return rpc.Event{
		Key: key, Op: op, Node: f.node, Time: now, Value: value,
		Stamp: fmt.Sprintf("%d.%d", now.UnixMilli(), f.seq),
	}
}

func (f *Fake) viewService(s rpc.Service, now time.Time) rpc.Service {
	s.Up = s.Status == "up" && (s.Expires.IsZero() || now.Before(s.Expires))
	return s
}

func (f *Fake) viewKernel(k rpc.Kernel, now time.Time) rpc.Kernel {
	k.Live = k.Holder != "" && !k.Released && now.Before(k.Expires)
	if k.Released {
		k.Expires = time.Time{} // as the agent shows a released lease
	}
	return k
}

func (f *Fake) liveEntry(k string) (rpc.BlacklistEntry, bool) {
	e, ok := f.entries[k]
	if !ok || (!e.Expires.IsZero() && !f.now().Before(e.Expires)) {
		return rpc.BlacklistEntry{}, false
	}
	return e, true
}

// heldLocked returns kernel id if this node holds it live.
func (f *Fake) heldLocked(id string) (rpc.Kernel, error) {
	k, ok := f.kernels[id]
	if !ok {
		return rpc.Kernel{}, rpc.NotFound("no kernel %s", id)
	}
	if v := f.viewKernel(k, f.now()); !v.Live || v.Holder != f.node {
		return rpc.Kernel{}, rpc.Denied("kernel %s is not held by this node", id)
	}
	return k, nil
}

func leaseTTL(ms int64) (time.Duration, error) {
	switch {
	case ms < 0:
		return 0, rpc.BadRequest("ttl must not be negative")
	case ms == 0:
		return DefaultTTL, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func terminal(state string) bool {
	return state == "done" || state == "failed" || state == "cancelled"
}

func svcKey(service, instance string) string { return "svc/" + service + "/" + instance }
func blKey(list, id string) string           { return "bl/" + list + "/" + id }
func taskKey(id string) string               { return "task/" + id }
func kernelKey(id string) string             { return "kernel/" + id }

// Records returns no records: the fake keeps views, not the writes behind
// them.
func (f *Fake) Records(ctx context.Context, prefix string) ([]rpc.Record, error) {
	if err := f.before(ctx, "Records"); err != nil {
		return nil, err
	}
	return []rpc.Record{}, nil
}

// Explain reports the key as not found: the fake keeps views, not the
// writes behind them.
func (f *Fake) Explain(ctx context.Context, key string) (rpc.Explanation, error) {
	if err := f.before(ctx, "Explain"); err != nil {
		return rpc.Explanation{}, err
	}
	return rpc.Explanation{}, rpc.NotFound("no such key: %s", key)
}
