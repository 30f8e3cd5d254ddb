package agent

import (
	"context"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// Records lists the stored writes under prefix: each register's winning
// write and every lease record of a kernel.
func (a *Agent) Records(_ context.Context, prefix string) ([]rpc.Record, error) {
	out := []rpc.Record{}
	for _, e := range a.store.List(prefix) {
		for _, d := range e.Deltas {
			out = append(out, recordOf(d))
		}
	}
	return out, nil
}

func recordOf(d crdt.Delta) rpc.Record {
	r := rpc.Record{
		Key: d.Key, Op: d.Op.String(), Node: d.Stamp.Node,
		HLC: uint64(d.Stamp.HLC), Stamp: d.Stamp.HLC.String(),
		Epoch: d.Epoch, ExpiryMillis: d.Expiry, Value: d.Value,
	}
	if crdt.NamespaceOf(d.Key) == crdt.NSTask {
		r.Task = d.Task.String()
	}
	return r
}
