package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
)

// Status implements rpc.API.
func (a *Agent) Status(context.Context) (rpc.Status, error) {
	return rpc.Status{
		Node: a.self, Cluster: a.cfg.Cluster, Region: a.cfg.Region, Version: Version,
		Addrs: a.node.Addrs(), Peers: len(a.node.Peers()), Keys: a.store.Len(),
		Watchers: a.store.Watchers(), Unflushed: a.store.Unflushed(), DeltasIn: a.deltasIn.Load(), DeltasOut: a.pub.sent.Load(),
		Rejected: a.node.Rejections(), PeersRefused: a.node.Refused(), Started: a.started.UTC(),
		AntiEntropy: rpc.AntiEntropyStats{
			Rounds: a.sync.rounds.Load(), Repaired: a.sync.repaired.Load(),
			Refused: a.sync.refused.Load(), Failed: a.sync.failed.Load(),
		},
		Lag: a.lag.report(),
	}, nil
}

// Members implements rpc.API: every node heard on node/, with its
// services and live leases counted.
func (a *Agent) Members(context.Context) ([]rpc.Member, error) {
	now := a.nowMS()
	connected := make(map[string]bool)
	for _, p := range a.node.Peers() {
		connected[p.String()] = true
	}
	services, leases := make(map[string]int), make(map[string]int)
	for _, e := range a.store.List("svc/") {
		if w := e.Winner(); w.Live(now) {
			services[w.Stamp.Node]++
		}
	}
	for _, e := range a.store.List("kernel/") {
		if l := crdt.Resolve(e); l.Live(now) {
			leases[l.Holder]++
		}
	}
	heard := make(map[string]int64)
	for _, p := range a.members.Peers() {
		heard[p.ID] = p.Heard
	}
	heard[a.self] = now
	var out []rpc.Member
	for _, e := range a.store.List("node/") {
		m := memberView(e.Winner())
		m.Self, m.Connected = m.Node == a.self, connected[m.Node]
		m.Services, m.Leases = services[m.Node], leases[m.Node]
		m.State, m.LastHeard = a.members.State(m.Node).String(), msTime(heard[m.Node])
		out = append(out, m)
	}
	return out, nil
}

func ttlMS(ms int64, what string) (int64, error) {
	if ms < 0 {
		return 0, rpc.BadRequest("%s must not be negative", what)
	}
	return ms, nil
}

func badName(what, s string) error {
	if err := checkName(what, s); err != nil {
		return rpc.BadRequest("%v", err)
	}
	return nil
}

// ServiceSet implements rpc.API. An instance belongs to the node that wrote
// it: setting one that another node holds live is denied.
func (a *Agent) ServiceSet(_ context.Context, service, instance string, req rpc.ServiceSet) (rpc.Service, error) {
	if err := errors.Join(badName("service", service), badName("instance", instance), badName("status", req.Status)); err != nil {
		return rpc.Service{}, err
	}
	ttl, err := ttlMS(req.TTLMillis, "ttl")
	if err != nil {
		return rpc.Service{}, err
	}
	key := serviceKey(service, instance)
	now := a.nowMS()
	if e, ok := a.store.Get(key); ok {
		if w := e.Winner(); w.Live(now) && w.Stamp.Node != a.self && !a.ownerDead(w.Stamp.Node) {
			return rpc.Service{}, rpc.Denied("service %s/%s is owned by node %s", service, instance, w.Stamp.Node)
		}
	}
	d := crdt.Delta{Key: key, Op: crdt.OpPut, Value: crdt.Encode(crdt.ServiceValue{Addr: req.Addr, Status: req.Status, Tags: req.Tags})}
	if ttl > 0 {
		d.Expiry = now + ttl
	}
	d, _, err = a.write(d)
	if err != nil {
		return rpc.Service{}, err
	}
	return a.serviceView(d, now, membership.Alive), nil
}

// ServiceDelete implements rpc.API.
func (a *Agent) ServiceDelete(_ context.Context, service, instance string) error {
	key := serviceKey(service, instance)
	e, ok := a.store.Get(key)
	if !ok || e.Winner().Op != crdt.OpPut {
		return rpc.NotFound("no service %s/%s", service, instance)
	}
	if w := e.Winner(); w.Stamp.Node != a.self && w.Live(a.nowMS()) {
		return rpc.Denied("service %s/%s is owned by node %s", service, instance, w.Stamp.Node)
	}
	_, _, err := a.write(crdt.Delta{Key: key, Op: crdt.OpDelete})
	return err
}

// ServiceGet implements rpc.API.
func (a *Agent) ServiceGet(_ context.Context, service, instance string) (rpc.Service, error) {
	now := a.nowMS()
	e, ok := a.store.Get(serviceKey(service, instance))
	if !ok || !e.Winner().Live(now) {
		return rpc.Service{}, rpc.NotFound("no service %s/%s", service, instance)
	}
	return a.serviceView(e.Winner(), now, a.members.State(e.Winner().Stamp.Node)), nil
}

// ServiceList implements rpc.API.
func (a *Agent) ServiceList(_ context.Context, service string, upOnly bool) ([]rpc.Service, error) {
	prefix := "svc/"
	if service != "" {
		prefix += service + "/"
	}
	now := a.nowMS()
	out := []rpc.Service{}
	for _, e := range a.store.List(prefix) {
		if w := e.Winner(); w.Live(now) {
			if v := a.serviceView(w, now, a.members.State(w.Stamp.Node)); v.Up || !upOnly {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// BlacklistAdd implements rpc.API.
func (a *Agent) BlacklistAdd(_ context.Context, list, id string, req rpc.BlacklistAdd) (rpc.BlacklistEntry, error) {
	if err := errors.Join(badName("list", list), badName("id", id)); err != nil {
		return rpc.BlacklistEntry{}, err
	}
	if err := a.checkBLWriter(); err != nil {
		return rpc.BlacklistEntry{}, err
	}
	ttl, err := ttlMS(req.TTLMillis, "ttl")
	if err != nil {
		return rpc.BlacklistEntry{}, err
	}
	d := crdt.Delta{Key: blacklistKey(list, id), Op: crdt.OpPut, Value: crdt.Encode(crdt.BlacklistValue{Reason: req.Reason})}
	if ttl > 0 {
		d.Expiry = a.nowMS() + ttl
	}
	d, _, err = a.write(d)
	return a.blacklistView(d), err
}

// BlacklistRemove implements rpc.API. Removing an id that is not listed
// still records the removal, so it wins over a concurrent add elsewhere
// with an earlier stamp.
func (a *Agent) BlacklistRemove(_ context.Context, list, id string) error {
	if err := errors.Join(badName("list", list), badName("id", id)); err != nil {
		return err
	}
	if err := a.checkBLWriter(); err != nil {
		return err
	}
	_, _, err := a.write(crdt.Delta{Key: blacklistKey(list, id), Op: crdt.OpDelete})
	return err
}

// checkBLWriter refuses a blacklist write on a node that bl_writers leaves
// out: every other agent would reject it.
func (a *Agent) checkBLWriter() error {
	if !a.policy.mayWrite(crdt.NSBlacklist, a.self) {
		return rpc.Denied("this node (%s) is not in bl_writers: only the nodes listed there may change blacklists", a.self)
	}
	return nil
}

// BlacklistHas implements rpc.API.
func (a *Agent) BlacklistHas(_ context.Context, list, id string) (rpc.BlacklistEntry, bool, error) {
	e, ok := a.store.Get(blacklistKey(list, id))
	if !ok || !e.Winner().Live(a.nowMS()) {
		return rpc.BlacklistEntry{List: list, ID: id}, false, nil
	}
	return a.blacklistView(e.Winner()), true, nil
}

// BlacklistList implements rpc.API.
func (a *Agent) BlacklistList(_ context.Context, list string) ([]rpc.BlacklistEntry, error) {
	if err := badName("list", list); err != nil {
		return nil, err
	}
	now := a.nowMS()
	out := []rpc.BlacklistEntry{}
	for _, e := range a.store.List("bl/" + list + "/") {
		if w := e.Winner(); w.Live(now) {
			out = append(out, a.blacklistView(w))
		}
	}
	return out, nil
}

func (a *Agent) task(id string) (crdt.Delta, crdt.TaskValue, error) {
	if err := badName("task id", id); err != nil {
		return crdt.Delta{}, crdt.TaskValue{}, err
	}
	e, ok := a.store.Get(taskKey(id))
	if !ok {
		return crdt.Delta{}, crdt.TaskValue{}, rpc.NotFound("no task %s", id)
	}
	var v crdt.TaskValue
	_ = crdt.Decode(e.Winner().Value, &v)
	return e.Winner(), v, nil
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
	if cur, v, err := a.task(id); err == nil && cur.Task != crdt.TaskQueued {
		return rpc.Task{}, rpc.Denied("task %s is %s on node %s; it can be reassigned only while queued", id, cur.Task, v.Owner)
	}
	d, _, err := a.write(crdt.Delta{Key: taskKey(id), Op: crdt.OpPut, Task: crdt.TaskQueued, Value: crdt.Encode(crdt.TaskValue{Owner: owner})})
	return a.taskView(d), err
}

// TaskUpdate implements rpc.API: the owner reports progress.
func (a *Agent) TaskUpdate(_ context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	state, ok := crdt.ParseTaskState(req.State)
	if !ok || state == crdt.TaskQueued || state == crdt.TaskCancelRequested {
		return rpc.Task{}, rpc.BadRequest("state must be running, done, failed or cancelled, got %q", req.State)
	}
	cur, v, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if v.Owner != a.self {
		return rpc.Task{}, rpc.Denied("task %s is owned by node %s; only its owner changes its state", id, v.Owner)
	}
	if cur.Task.Terminal() {
		return rpc.Task{}, rpc.Denied("task %s is already %s", id, cur.Task)
	}
	v.Result = req.Result
	d, changed, err := a.write(crdt.Delta{Key: taskKey(id), Op: crdt.OpPut, Task: state, Value: crdt.Encode(v)})
	if err == nil && !changed {
		return a.TaskGet(context.Background(), id) // a cancel request outranks "running"
	}
	return a.taskView(d), err
}

// TaskCancel implements rpc.API: from any node, without knowing where the
// task runs. The owner's agent turns the request into "cancelled".
func (a *Agent) TaskCancel(_ context.Context, id string) (rpc.Task, error) {
	cur, v, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if cur.Task.Terminal() || cur.Task == crdt.TaskCancelRequested {
		return a.taskView(cur), nil
	}
	state := crdt.TaskCancelRequested
	if v.Owner == a.self {
		state = crdt.TaskCancelled
		v.Result = "cancelled"
	}
	d, _, err := a.write(crdt.Delta{Key: taskKey(id), Op: crdt.OpPut, Task: state, Value: crdt.Encode(v)})
	return a.taskView(d), err
}

// TaskGet implements rpc.API.
func (a *Agent) TaskGet(_ context.Context, id string) (rpc.Task, error) {
	cur, _, err := a.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	return a.taskView(cur), nil
}

// TaskList implements rpc.API.
func (a *Agent) TaskList(context.Context) ([]rpc.Task, error) {
	out := []rpc.Task{}
	for _, e := range a.store.List("task/") {
		out = append(out, a.taskView(e.Winner()))
	}
	return out, nil
}

// Watch implements rpc.API.
func (a *Agent) Watch(ctx context.Context, prefix string, fn func(rpc.Event) error) error {
	w := a.store.Watch(prefix, 1024)
	defer w.Close()
	ls, unsubscribe := a.leases.subscribe(prefix)
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.closed:
			return ErrStopped
		case ev := <-ls.ch:
			if err := fn(ev); err != nil {
				return err
			}
		case ev, ok := <-w.C():
			if !ok {
				return fmt.Errorf("watch %q: %w", prefix, w.Err())
			}
			d := ev.Delta
			err := fn(rpc.Event{
				Key: d.Key, Op: d.Op.String(), Node: d.Stamp.Node, Stamp: d.Stamp.HLC.String(),
				Time: stampTime(d.Stamp), Value: a.eventValue(ev.Entry, a.nowMS()),
			})
			if err != nil {
				return err
			}
		}
	}
}

// sleep waits d or until ctx or the agent ends.
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.closed:
		return ErrStopped
	}
}
