// Package queue serves one node's tasks to its local clients: assigned
// tasks (assign, state changes by the owner), the work queue (submit, take
// by the lease rule, touch, done or fail by the taker, sessions), confirmed
// cancels and listings. The rules are the tasks package's; a take's lease
// is a kernel lease (package kernels) named tasks.LeaseKernel(id); every
// write goes through the node's one write path. It starts no goroutine of
// its own beyond those of a running take session, which end with it.
package queue

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/kernels"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/tasks"
	"github.com/rumor-dev/rumor/view"
)

// Deps are what the tasks need of their node.
type Deps struct {
	Self   string
	Config config.Config
	Clock  clock.Clock
	Log    *slog.Logger
	Store  *store.Store
	// Write makes a local write; it returns kernels.ErrStopped once the
	// node has stopped.
	Write func(d crdt.Delta) (crdt.Delta, bool, error)
	// Kernels holds the takes' leases.
	Kernels *kernels.Service
	// Known reports whether node is a member the failure detector has
	// heard of; Dead whether it holds node dead.
	Known func(node string) bool
	Dead  func(node string) bool
	// Rand spreads concurrent takes over a queue's oldest tasks.
	Rand *rand.Rand
	// States are the failure detector's verdicts, for views.
	States view.States
	// Closed is closed when the node stops.
	Closed <-chan struct{}
}

// Service is one node's tasks. Its methods are safe for concurrent use.
type Service struct {
	Deps
	cfg     config.Config
	self    string
	clock   clock.Clock
	log     *slog.Logger
	store   *store.Store
	kernels *kernels.Service
	closed  <-chan struct{}

	mu       sync.Mutex
	claiming map[string]bool // tasks a take of this node is claiming
	rng      *rand.Rand      // guarded by mu
}

// New returns the tasks of the node d describes.
func New(d Deps) *Service {
	return &Service{
		Deps: d, cfg: d.Config, self: d.Self, clock: d.Clock, log: d.Log, store: d.Store, kernels: d.Kernels, closed: d.Closed,
		claiming: map[string]bool{}, rng: d.Rand,
	}
}

func (s *Service) nowMS() int64 { return s.clock.Now().UnixMilli() }

// rand returns a random non-negative int.
func (s *Service) rand() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(1 << 30)
}

func (s *Service) write(d crdt.Delta) (crdt.Delta, bool, error) { return s.Write(d) }

func badName(what, name string) error {
	if err := crdt.CheckName(what, name); err != nil {
		return rpc.BadRequest("%v", err)
	}
	return nil
}

// task returns task id's current write.
func (s *Service) task(id string) (tasks.Task, error) {
	if err := badName("task id", id); err != nil {
		return tasks.Task{}, err
	}
	e, ok := s.store.Get(crdt.TaskKey(id))
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

// Assign is rpc.API's TaskAssign: record which node runs the task. The
// node must be a member this agent knows. Two concurrent assignments of
// one id are decided by the register's rule (the later stamp wins); the
// agent waits a settle window and exchanges the task with its peers
// before it answers, and a losing assignment is denied, naming the
// winner.
func (s *Service) Assign(ctx context.Context, id string, req rpc.TaskAssign) (rpc.Task, error) {
	if err := badName("task id", id); err != nil {
		return rpc.Task{}, err
	}
	owner := req.Node
	if owner == "" {
		owner = s.self
	}
	if err := badName("node", owner); err != nil {
		return rpc.Task{}, err
	}
	if !s.Known(owner) {
		return rpc.Task{}, rpc.BadRequest("node %s is not a member this agent knows (see rumor members)", owner)
	}
	var cur *tasks.Task
	if t, err := s.task(id); err == nil {
		cur = &t
	}
	d, err := tasks.Assign(cur, id, owner)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	if d, _, err = s.write(d); err != nil {
		return rpc.Task{}, err
	}
	if err := s.kernels.Settle(ctx, d.Key); err != nil {
		return rpc.Task{}, err
	}
	won, err := s.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if won.Delta.Stamp != d.Stamp {
		return rpc.Task{}, rpc.Denied("task %s: a concurrent write by node %s won (%s on node %s); this assignment to node %s lost",
			id, won.Delta.Stamp.Node, won.Delta.Task, dash(won.Value.Owner), owner)
	}
	return s.view(d), nil
}

// dash shows an empty name as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Update is rpc.API's TaskUpdate: the owner reports progress. A queue's
// task is ended (done, failed, cancelled) by its worker, who must still
// hold the attempt's lease.
func (s *Service) Update(ctx context.Context, id string, req rpc.TaskUpdate) (rpc.Task, error) {
	cur, err := s.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	if cur.Value.Queue != "" {
		return s.finish(ctx, cur, req)
	}
	d, err := tasks.Update(cur, id, s.self, req.State, req.Result)
	if err != nil {
		return rpc.Task{}, taskError(err)
	}
	d, changed, err := s.write(d)
	if err == nil && !changed {
		return s.Get(ctx, id) // a cancel request outranks "running"
	}
	return s.view(d), err
}

// Cancel is rpc.API's TaskCancel: from any node, without knowing where the
// task runs. A task that a worker may be running gets a request, which
// becomes cancelled only when the worker acknowledges it (its owner sets
// cancelled); one that no worker runs (still queued, its worker's lease
// gone, its owner node dead) is cancelled at once.
func (s *Service) Cancel(_ context.Context, id string) (rpc.Task, error) {
	cur, err := s.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	d, ok := tasks.Cancel(cur, id, s.self, s.hasWorker(cur))
	if !ok {
		return s.view(cur.Delta), nil
	}
	d, _, err = s.write(d)
	return s.view(d), err
}

// hasWorker reports whether a worker may be running t: a queue's task
// whose attempt's lease is held, or an assigned task past queued whose
// owner node is not dead.
func (s *Service) hasWorker(t tasks.Task) bool {
	if t.Value.Queue != "" {
		return s.held(t)
	}
	return t.Delta.Task != crdt.TaskQueued && !s.Dead(t.Value.Owner)
}

// Get is rpc.API's TaskGet.
func (s *Service) Get(_ context.Context, id string) (rpc.Task, error) {
	cur, err := s.task(id)
	if err != nil {
		return rpc.Task{}, err
	}
	return s.view(cur.Delta), nil
}

// List is rpc.API's TaskList.
func (s *Service) List(_ context.Context, f rpc.TaskFilter) ([]rpc.Task, error) {
	if f.State != "" {
		if _, ok := crdt.ParseTaskState(f.State); !ok {
			return nil, rpc.BadRequest("bad task state %q: want queued, running, cancel-requested, done, failed or cancelled", f.State)
		}
	}
	out := []rpc.Task{}
	for _, e := range s.store.List("task/") {
		t := s.view(e.Winner())
		if (f.State == "" || t.State == f.State) && (f.Queue == "" || t.Queue == f.Queue) && (f.Owner == "" || t.Owner == f.Owner) {
			out = append(out, t)
		}
	}
	return out, nil
}

// view shows task d; a queue's running task whose worker is gone
// shows queued (tasks.State).
func (s *Service) view(d crdt.Delta) rpc.Task {
	now := s.nowMS()
	v := view.Task(d, now, s.States)
	if v.Queue != "" && d.Task == crdt.TaskRunning {
		v.State = tasks.State(tasks.Decode(d), s.lease(v.ID), now, s.cfg.MaxSkew.Milliseconds()).String()
	}
	return v
}
