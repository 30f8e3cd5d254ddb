package agent

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/view"
)

// kvKey checks a kv path from a request and returns its store key.
func kvKey(path string) (string, error) {
	if err := crdt.CheckKVPath(path); err != nil {
		return "", rpc.BadRequest("%v", err)
	}
	return crdt.KVKey(path), nil
}

// checkKVWriter refuses a kv write on a node that kv_writers leaves out:
// every other agent would reject it.
func (a *Agent) checkKVWriter(key string) error {
	if ok, rule := a.rep.Policy().MayWrite(key, a.self); !ok {
		return rpc.Denied("this node (%s) is not in %s: only the nodes listed there may write %s", a.self, rule, crdt.KVPath(key))
	}
	return nil
}

// kvWrite writes op (put or delete) with value on key: the version after
// the one the key holds at the instant of the write, if ifVersion is nil
// or names the version `kv get` would show (0 for a key absent, deleted
// or expired).
func (a *Agent) kvWrite(key string, op crdt.Op, value string, expiry int64, ifVersion *uint64) (rpc.KVEntry, error) {
	if err := a.checkKVWriter(key); err != nil {
		return rpc.KVEntry{}, err
	}
	d, _, err := a.writeFrom(key, func(cur crdt.Entry) (crdt.Delta, error) {
		var last, shown uint64
		if len(cur.Deltas) > 0 {
			w := cur.Winner()
			last = crdt.KVVersion(w)
			if w.Live(a.nowMS()) {
				shown = last
			}
		}
		if ifVersion != nil && *ifVersion != shown {
			return crdt.Delta{}, &rpc.Error{
				Code: rpc.CodeDenied, Message: versionMismatch(crdt.KVPath(key), shown, *ifVersion),
				Details: map[string]any{"current_version": shown},
			}
		}
		return crdt.Delta{Key: key, Op: op, Expiry: expiry, Value: crdt.Encode(crdt.KVValue{Value: value, Version: last + 1})}, nil
	})
	if err != nil {
		return rpc.KVEntry{}, err
	}
	return view.KV(d), nil
}

func versionMismatch(path string, shown, want uint64) string {
	if shown == 0 {
		return fmt.Sprintf("if-version %d: %s does not exist here (version 0)", want, path)
	}
	return fmt.Sprintf("if-version %d: %s is at version %d here", want, path, shown)
}

// KVPut implements rpc.API.
func (a *Agent) KVPut(_ context.Context, path string, req rpc.KVPut) (rpc.KVEntry, error) {
	key, err := kvKey(path)
	if err != nil {
		return rpc.KVEntry{}, err
	}
	if !utf8.ValidString(req.Value) {
		return rpc.KVEntry{}, rpc.BadRequest("value for %s is not UTF-8 text: encode binary values (base64) first", path)
	}
	ttl, err := ttlMS(req.TTLMillis, "ttl")
	if err != nil {
		return rpc.KVEntry{}, err
	}
	var expiry int64
	if ttl > 0 {
		expiry = a.nowMS() + ttl
	}
	return a.kvWrite(key, crdt.OpPut, req.Value, expiry, req.IfVersion)
}

// KVDelete implements rpc.API. Deleting a key that is absent still
// records the delete, so it wins over a concurrent put elsewhere with an
// earlier stamp.
func (a *Agent) KVDelete(_ context.Context, path string, ifVersion *uint64) (rpc.KVEntry, error) {
	key, err := kvKey(path)
	if err != nil {
		return rpc.KVEntry{}, err
	}
	return a.kvWrite(key, crdt.OpDelete, "", 0, ifVersion)
}

// KVGet implements rpc.API.
func (a *Agent) KVGet(_ context.Context, path string) (rpc.KVEntry, error) {
	key, err := kvKey(path)
	if err != nil {
		return rpc.KVEntry{}, err
	}
	e, ok := a.store.Get(key)
	if !ok || !e.Winner().Live(a.nowMS()) {
		return rpc.KVEntry{}, rpc.NotFound("no kv key %s", path)
	}
	return view.KV(e.Winner()), nil
}

// KVList implements rpc.API.
func (a *Agent) KVList(_ context.Context, prefix string) ([]rpc.KVEntry, error) {
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		return nil, rpc.BadRequest("kv prefix %q must start with '/'", prefix)
	}
	now := a.nowMS()
	out := []rpc.KVEntry{}
	for _, e := range a.store.List(crdt.KVKey(prefix)) {
		if w := e.Winner(); w.Live(now) {
			out = append(out, view.KV(w))
		}
	}
	return out, nil
}

// KVHistory implements rpc.API.
func (a *Agent) KVHistory(_ context.Context, path string) ([]rpc.KVEntry, error) {
	key, err := kvKey(path)
	if err != nil {
		return nil, err
	}
	ds := a.store.KVHistory(key)
	if len(ds) == 0 {
		return nil, rpc.NotFound("this agent holds nothing for kv key %s", path)
	}
	return view.KVHistory(ds, a.nowMS()), nil
}
