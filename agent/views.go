package agent

import (
	"context"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/membership"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/view"
)

// states is how this agent's failure detector sees each node now.
func (a *Agent) states(node string) membership.State { return a.mon.Table().State(node) }

func (a *Agent) serviceView(d crdt.Delta, nowMS int64, owner membership.State) rpc.Service {
	return view.Service(d, nowMS, owner, a.states)
}

func (a *Agent) blacklistView(d crdt.Delta) rpc.BlacklistEntry {
	return view.Blacklist(d, a.nowMS(), a.states)
}

func (a *Agent) eventValue(e crdt.Entry, nowMS int64) any { return view.Event(e, nowMS, a.states) }

// Records implements rpc.API: the stored writes under prefix, each
// register's winning write and every lease record of a kernel.
func (a *Agent) Records(_ context.Context, prefix string) ([]rpc.Record, error) {
	out := []rpc.Record{}
	for _, e := range a.store.List(prefix) {
		for _, d := range e.Deltas {
			out = append(out, view.Record(d))
		}
	}
	return out, nil
}

// Explain implements rpc.API: what this agent holds for key and which rule
// made its value win.
func (a *Agent) Explain(_ context.Context, key string) (rpc.Explanation, error) {
	if err := crdt.CheckKey(key); err != nil {
		return rpc.Explanation{}, rpc.BadRequest("%v", err)
	}
	e, ok := a.store.Get(key)
	if !ok || len(e.Deltas) == 0 {
		return rpc.Explanation{}, rpc.NotFound("this agent holds nothing for %s", key)
	}
	lost := a.store.Superseded(key)
	if crdt.NamespaceOf(key) == crdt.NSKV {
		// The kv history keeps every key's recent writes, winner first.
		if h := a.store.KVHistory(key); len(h) > 0 {
			lost = h[1:]
		}
	}
	return view.Explain(e, lost, a.nowMS()), nil
}
