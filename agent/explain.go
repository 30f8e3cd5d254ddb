package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// Explain says what this agent holds for key and which rule made its value
// win: for a register, the winning write and the recent writes it beat; for
// a kernel, every lease record it holds (those that can still matter) with
// what the lease rule made of it.
func (a *Agent) Explain(_ context.Context, key string) (rpc.Explanation, error) {
	if err := crdt.CheckKey(key); err != nil {
		return rpc.Explanation{}, rpc.BadRequest("%v", err)
	}
	e, ok := a.store.Get(key)
	if !ok || len(e.Deltas) == 0 {
		return rpc.Explanation{}, rpc.NotFound("this agent holds nothing for %s", key)
	}
	ns := crdt.NamespaceOf(key)
	out := rpc.Explanation{Key: key, Rule: crdt.Rule(ns)}
	if crdt.IsSet(ns) {
		a.explainLease(e, &out)
		return out, nil
	}
	w := e.Winner()
	out.Verdict = fmt.Sprintf("%s by %s at %s", w.Op, w.Stamp.Node, w.Stamp.HLC)
	why := "the only write this agent holds for the key"
	lost := a.store.Superseded(key)
	if len(lost) > 0 {
		why = "beats every write below"
	}
	out.Records = []rpc.ExplainedRecord{{Record: recordOf(w), Why: why}}
	for _, d := range lost {
		out.Superseded = append(out.Superseded, rpc.ExplainedRecord{Record: recordOf(d), Why: "lost: " + crdt.Why(w, d)})
	}
	return out, nil
}

// explainLease fills out for a kernel entry.
func (a *Agent) explainLease(e crdt.Entry, out *rpc.Explanation) {
	l := crdt.Resolve(e)
	switch now := a.nowMS(); {
	case l.Holder == "":
		out.Verdict = "no claim has won"
	case l.Released:
		out.Verdict = fmt.Sprintf("released by %s (epoch %d)", l.Holder, l.Epoch)
	case l.Live(now):
		out.Verdict = fmt.Sprintf("held by %s (epoch %d) until %s", l.Holder, l.Epoch, time.UnixMilli(l.Expiry).UTC().Format(time.RFC3339Nano))
	default:
		out.Verdict = fmt.Sprintf("expired: last held by %s (epoch %d)", l.Holder, l.Epoch)
	}
	claims := map[crdt.Stamp]crdt.ClaimVerdict{}
	for _, v := range crdt.ExplainLease(e) {
		claims[v.Claim.Stamp] = v
	}
	for _, d := range e.Deltas {
		why := ""
		switch d.Op {
		case crdt.OpClaim:
			why = claims[d.Stamp].Reason
		case crdt.OpRenew, crdt.OpRelease:
			switch {
			case d.Stamp.Node == l.Holder && d.Epoch == l.Epoch:
				why = fmt.Sprintf("%s of the winning lease (epoch %d)", d.Op, d.Epoch)
				if d.Stamp == l.Renewed {
					why += "; it gave the expiry"
				}
			default:
				why = fmt.Sprintf("%s of %s's epoch %d, not the current lease", d.Op, d.Stamp.Node, d.Epoch)
			}
		}
		out.Records = append(out.Records, rpc.ExplainedRecord{Record: recordOf(d), Why: why})
	}
}
