package replica

import (
	"strings"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
)

func TestCheckDeltaPolicy(t *testing.T) {
	const me, other = "me", "other"
	st := crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: me}
	task := func(state crdt.TaskState, owner string) crdt.Delta {
		return crdt.Delta{Key: "task/t", Stamp: st, Op: crdt.OpPut, Task: state, Value: crdt.Encode(crdt.TaskValue{Owner: owner})}
	}
	queueTask := func(state crdt.TaskState, owner, queue string) crdt.Delta {
		return crdt.Delta{Key: "task/t", Stamp: st, Op: crdt.OpPut, Task: state, Value: crdt.Encode(crdt.TaskValue{Owner: owner, Queue: queue, Payload: []byte("p")})}
	}
	for _, tc := range []struct {
		name   string
		ns     crdt.Namespace
		d      crdt.Delta
		reason string
	}{
		{"svc put", crdt.NSService, crdt.Delta{Key: "svc/a/b", Stamp: st, Op: crdt.OpPut, Value: []byte(`{"status":"up"}`)}, ""},
		{"svc without status", crdt.NSService, crdt.Delta{Key: "svc/a/b", Stamp: st, Op: crdt.OpPut, Value: []byte(`{}`)}, ReasonBadValue},
		{"svc key too short", crdt.NSService, crdt.Delta{Key: "svc/a", Stamp: st, Op: crdt.OpDelete}, ReasonBadKey},
		{"empty segment", crdt.NSBlacklist, crdt.Delta{Key: "bl//x", Stamp: st, Op: crdt.OpPut}, ReasonBadKey},
		{"no stamp", crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: crdt.Stamp{Node: me}, Op: crdt.OpPut}, ReasonBadValue},
		{"claim on bl", crdt.NSBlacklist, crdt.Delta{Key: "bl/a/b", Stamp: st, Op: crdt.OpClaim}, ReasonBadOp},
		{"own node", crdt.NSNode, crdt.Delta{Key: "node/me", Stamp: st, Op: crdt.OpPut}, ""},
		{"other's node", crdt.NSNode, crdt.Delta{Key: "node/other", Stamp: st, Op: crdt.OpPut}, ReasonNotOwner},
		{"assign for another", crdt.NSTask, task(crdt.TaskQueued, other), ""},
		{"cancel request by anyone", crdt.NSTask, task(crdt.TaskCancelRequested, other), ""},
		{"done by non-owner", crdt.NSTask, task(crdt.TaskDone, other), ReasonNotOwner},
		{"done by owner", crdt.NSTask, task(crdt.TaskDone, me), ""},
		{"task without owner", crdt.NSTask, task(crdt.TaskQueued, ""), ReasonBadValue},
		{"queue submission without owner", crdt.NSTask, queueTask(crdt.TaskQueued, "", "jobs"), ""},
		{"queue take by its taker", crdt.NSTask, queueTask(crdt.TaskRunning, me, "jobs"), ""},
		{"queue take in another's name", crdt.NSTask, queueTask(crdt.TaskRunning, other, "jobs"), ReasonNotOwner},
		{"queue done in another's name", crdt.NSTask, queueTask(crdt.TaskDone, other, "jobs"), ReasonNotOwner},
		{"ownerless queue task running", crdt.NSTask, queueTask(crdt.TaskRunning, "", "jobs"), ReasonBadValue},
		{"ownerless queue task done", crdt.NSTask, queueTask(crdt.TaskDone, "", "jobs"), ReasonBadValue},
		{"bad queue name", crdt.NSTask, queueTask(crdt.TaskQueued, "", "a/b"), ReasonBadValue},
		{"unknown task state", crdt.NSTask, task(99, me), ReasonBadOp},
		{"claim", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpClaim, Epoch: 1, Expiry: 2000}, ""},
		{"claim expired at birth", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpClaim, Epoch: 1, Expiry: 1000}, ReasonBadValue},
		{"epoch 0", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpRelease}, ReasonBadEpoch},
		{"epoch at the ceiling", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpRelease, Epoch: EpochCeiling}, ""},
		{"epoch past the ceiling", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpRelease, Epoch: EpochCeiling + 1}, ReasonBadEpoch},
		{"epoch 2^64-1", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpClaim, Epoch: 1<<64 - 1, Expiry: 2000}, ReasonBadEpoch},
		{"kv put", crdt.NSKV, crdt.Delta{Key: "kv/config/a", Stamp: st, Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Value: "x", Version: 1})}, ""},
		{"kv delete", crdt.NSKV, crdt.Delta{Key: "kv/config/a", Stamp: st, Op: crdt.OpDelete, Value: crdt.Encode(crdt.KVValue{Version: 2})}, ""},
		{"kv without version", crdt.NSKV, crdt.Delta{Key: "kv/config/a", Stamp: st, Op: crdt.OpPut, Value: []byte(`{"v":"x"}`)}, ReasonBadValue},
		{"kv undecodable", crdt.NSKV, crdt.Delta{Key: "kv/config/a", Stamp: st, Op: crdt.OpPut, Value: []byte(`x`)}, ReasonBadValue},
		{"kv empty segment", crdt.NSKV, crdt.Delta{Key: "kv/config//a", Stamp: st, Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Version: 1})}, ReasonBadKey},
		{"claim on kv", crdt.NSKV, crdt.Delta{Key: "kv/a", Stamp: st, Op: crdt.OpClaim, Epoch: 1, Expiry: 2000}, ReasonBadOp},
		{"put on kernel", crdt.NSKernel, crdt.Delta{Key: "kernel/k", Stamp: st, Op: crdt.OpPut, Epoch: 1}, ReasonBadOp},
	} {
		err := checkDelta(tc.d, Limits{})
		got := ReasonOf(err)
		if err != nil && got == "" {
			t.Errorf("%s: non-policy error %v", tc.name, err)
		}
		if got != tc.reason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.reason)
		}
	}
}

func TestPolicyBLWriters(t *testing.T) {
	const me, other = "me", "other"
	st := func(node string) crdt.Stamp { return crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: node} }
	open, closed := NewPolicy(nil, nil), NewPolicy([]string{me}, nil)
	for _, tc := range []struct {
		name   string
		p      Policy
		d      crdt.Delta
		reason string
	}{
		{"open: anyone writes bl", open, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpPut}, ""},
		{"listed writer", closed, crdt.Delta{Key: "bl/a/b", Stamp: st(me), Op: crdt.OpPut}, ""},
		{"unlisted put", closed, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpPut}, ReasonNotAllowed},
		{"unlisted delete", closed, crdt.Delta{Key: "bl/a/b", Stamp: st(other), Op: crdt.OpDelete}, ReasonNotAllowed},
		{"other namespaces unaffected", closed, crdt.Delta{Key: "node/other", Stamp: st(other), Op: crdt.OpPut}, ""},
	} {
		if got := ReasonOf(tc.p.check(tc.d, Limits{})); got != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.reason)
		}
	}
}

func TestPolicyKVWriters(t *testing.T) {
	const pay, ops, other = "pay", "ops", "other"
	p := NewPolicy(nil, map[string][]string{
		"/config/":                {ops},
		"/config/payments/":       {pay},
		"/config/payments/shared": {pay, ops},
	})
	put := func(path, node string) crdt.Delta {
		return crdt.Delta{Key: crdt.KVKey(path), Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: node}, Op: crdt.OpPut, Value: crdt.Encode(crdt.KVValue{Version: 1})}
	}
	for _, tc := range []struct {
		name   string
		d      crdt.Delta
		reason string
	}{
		{"longest prefix: payments writer", put("/config/payments/db", pay), ""},
		{"longest prefix refuses the shorter prefix's writer", put("/config/payments/db", ops), ReasonNotAllowed},
		{"an even longer prefix lists both", put("/config/payments/shared/x", ops), ""},
		{"the short prefix", put("/config/web/port", ops), ""},
		{"the short prefix refuses others", put("/config/web/port", pay), ReasonNotAllowed},
		{"no prefix matches: anyone", put("/feature/flags", other), ""},
		{"a delete is a write", crdt.Delta{Key: "kv/config/web/port", Stamp: crdt.Stamp{HLC: crdt.MakeHLC(1000, 0), Node: other}, Op: crdt.OpDelete, Value: crdt.Encode(crdt.KVValue{Version: 2})}, ReasonNotAllowed},
		{"prefixes are not segments", put("/configs/x", other), ""},
	} {
		err := p.check(tc.d, Limits{})
		if got := ReasonOf(err); got != tc.reason {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.reason)
		}
		if tc.reason != "" && !strings.Contains(err.Error(), "kv_writers /config/") {
			t.Errorf("%s: error %q does not name the kv_writers prefix", tc.name, err)
		}
	}
}
