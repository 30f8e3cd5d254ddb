package kernels

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/view"
)

// The wait queue of a kernel is its live wait entries, wait/<kernel>/
// <node>.<session>, each written and refreshed by its waiter's agent and
// deleted when the waiter is granted or gives up. Waiters are granted in
// the order they began to wait (their entry's since, then node and
// session), as a ZooKeeper fair lock grants sequential nodes: only the
// head of the queue claims a free kernel, so a release wakes every waiter
// but only one writes a claim, and a claim that is not the head's (a
// one-shot claim without --wait included) is denied while anyone waits.
// The queue is a matter of fairness, not safety: a waiter that has not
// reached every node yet may be overtaken, and two heads on two sides of
// a partition both claim; the lease rule still names one holder.

// waitTTL is how long a wait entry lives without a refresh: a waiter whose
// agent died leaves the queue after dead_after, as its services go down.
func (s *Service) waitTTL() time.Duration { return s.cfg.DeadAfter }

// queue returns the live waiters for kernel id, first first.
func (s *Service) queue(id string, nowMS int64) []rpc.Waiter {
	var out []rpc.Waiter
	for _, e := range s.store.List("wait/" + id + "/") {
		w := e.Winner()
		if w.Op != crdt.OpPut || !w.Live(nowMS) || s.ownerDead(w.Stamp.Node) || strings.Count(e.Key, "/") != 2 {
			continue
		}
		out = append(out, view.Waiter(w))
	}
	slices.SortFunc(out, func(x, y rpc.Waiter) int {
		return cmp.Or(x.Since.Compare(y.Since), strings.Compare(x.Node, y.Node), strings.Compare(x.Session, y.Session))
	})
	return out
}

// overtakes reports whether a claim by this agent's waiter qid ("" for a
// claim that does not wait) would overtake a waiter of kernel id, and the
// head of its queue.
func (s *Service) overtakes(id, qid string) (rpc.Waiter, bool) {
	q := s.queue(id, s.nowMS())
	if len(q) == 0 {
		return rpc.Waiter{}, false
	}
	head := q[0]
	return head, head.Node != s.self || head.Session != qid
}

// enqueue writes (or refreshes) the wait entry of waiter qid for kernel id.
func (s *Service) enqueue(id, qid, job string, sinceMS int64) error {
	_, _, err := s.write(crdt.Delta{
		Key: crdt.WaitKey(id, s.self, qid), Op: crdt.OpPut, Expiry: s.nowMS() + s.waitTTL().Milliseconds(),
		Value: crdt.Encode(crdt.WaitValue{SinceMS: sinceMS, Job: job}),
	})
	return err
}

// dequeue deletes the wait entry of waiter qid for kernel id.
func (s *Service) dequeue(id, qid string) {
	if _, _, err := s.write(crdt.Delta{Key: crdt.WaitKey(id, s.self, qid), Op: crdt.OpDelete}); err != nil {
		s.log.Debug("leaving the wait queue", "kernel", id, "err", err)
	}
}
