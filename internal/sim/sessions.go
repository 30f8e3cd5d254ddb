package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/rumor-dev/rumor/internal/cluster"
	"github.com/rumor-dev/rumor/rpc"
)

// simSession is a kernel session a scenario opened: a client of one
// agent's session stream that sends keepalives every ttl/3, as rumor lock
// does, until it ends or its lease does.
type simSession struct {
	node   *cluster.Node
	kernel string
	events chan rpc.SessionEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// session opens one: session s1 n1 k [ttl=3s] [wait=10s]. It prints the
// first verdict: "granted epoch=N", "waiting", or "denied: <kernel>".
func (s *Script) session(d *datadriven.TestData) string {
	name, n, k := s.arg(d, 0), s.agentOf(d, 1), s.arg(d, 2)
	if _, ok := s.sessions[name]; ok {
		d.Fatalf(s.t, "session %s exists", name)
	}
	ttl := s.dur(d, "ttl", 0).Milliseconds()
	req := rpc.KernelClaim{TTLMillis: ttl, WaitMillis: s.dur(d, "wait", 0).Milliseconds(), Job: name}
	ctx, cancel := context.WithCancel(context.Background())
	ss := &simSession{node: n, kernel: k, events: make(chan rpc.SessionEvent, 64), cancel: cancel, done: make(chan struct{})}
	s.sessions[name] = ss
	a := n.Agent()
	go func() {
		defer close(ss.done)
		defer cancel() // stops the keepalives when the lease has ended
		var keepalive *time.Ticker
		stop := func() {
			if keepalive != nil {
				keepalive.Stop()
			}
		}
		defer stop()
		_ = a.KernelSession(ctx, k, req, func(ev rpc.SessionEvent) error {
			if ev.Event == rpc.SessionGranted && keepalive == nil {
				keepalive = time.NewTicker(time.Duration(ev.TTLMillis) * time.Millisecond / 3)
				go func(t *time.Ticker, sid string) {
					for {
						select {
						case <-ctx.Done():
							return
						case <-t.C:
							if _, err := a.KernelRenew(ctx, k, rpc.KernelRenew{TTLMillis: ttl, Session: sid}); err != nil && rpc.CodeOf(err) == rpc.CodeDenied {
								return
							}
						}
					}
				}(keepalive, ev.Session)
			}
			select {
			case ss.events <- ev:
			default: // the scenario does not read every renewal
			}
			return nil
		})
	}()
	return s.sessionEvent(ss, 30*time.Second)
}

// sessionNext prints the session's next event but renewals: session-event
// s1 [within=5s] ("none" if there is none by then).
func (s *Script) sessionNext(d *datadriven.TestData) string {
	ss := s.sessions[s.arg(d, 0)]
	if ss == nil {
		d.Fatalf(s.t, "no session %s", s.arg(d, 0))
	}
	return s.sessionEvent(ss, s.dur(d, "within", 5*time.Second))
}

func (s *Script) sessionEvent(ss *simSession, within time.Duration) string {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case ev := <-ss.events:
			switch ev.Event {
			case rpc.SessionRenewed:
				continue
			case rpc.SessionGranted:
				return fmt.Sprintf("granted epoch=%d", ev.Kernel.Epoch)
			case rpc.SessionDenied:
				return "denied: " + s.kernelText(ev.Kernel)
			}
			return ev.Event
		case <-t.C:
			return "none"
		}
	}
}

// endSession ends one as its client going away: end s1.
func (s *Script) endSession(d *datadriven.TestData) string {
	name := s.arg(d, 0)
	ss := s.sessions[name]
	if ss == nil {
		d.Fatalf(s.t, "no session %s", name)
	}
	ss.cancel()
	<-ss.done
	delete(s.sessions, name)
	return "ok"
}

// endSessions ends every session still open (the scenario's end).
func (s *Script) endSessions() {
	for name, ss := range s.sessions {
		ss.cancel()
		<-ss.done
		delete(s.sessions, name)
	}
}

// queueOf is the queue observation of kernel k: its waiters' nodes, first
// first, as node n sees them.
func (s *Script) queueOf(k string) func(n *cluster.Node) string {
	return func(n *cluster.Node) string {
		kn, err := n.Agent().KernelGet(context.Background(), k)
		if err != nil || len(kn.Waiters) == 0 {
			return "empty"
		}
		var names []string
		for _, w := range kn.Waiters {
			names = append(names, s.c.NameOf(w.Node))
		}
		return strings.Join(names, " ")
	}
}
