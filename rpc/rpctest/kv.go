package rpctest

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/rpc"
)

// kvHistory is how many writes per kv key Fake keeps.
const kvHistory = 5

// kvState is Fake's kv namespace: per path, its writes newest first.
type kvState map[string][]rpc.KVEntry

// KVPut implements rpc.API.
func (f *Fake) KVPut(ctx context.Context, key string, req rpc.KVPut) (rpc.KVEntry, error) {
	if err := f.before(ctx, "KVPut"); err != nil {
		return rpc.KVEntry{}, err
	}
	if req.TTLMillis < 0 {
		return rpc.KVEntry{}, rpc.BadRequest("ttl must not be negative")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := rpc.KVEntry{Key: key, Value: req.Value}
	if req.TTLMillis > 0 {
		e.Expires = f.now().Add(time.Duration(req.TTLMillis) * time.Millisecond)
	}
	return f.kvWriteLocked(e, req.IfVersion)
}

// KVDelete implements rpc.API.
func (f *Fake) KVDelete(ctx context.Context, key string, ifVersion *uint64) (rpc.KVEntry, error) {
	if err := f.before(ctx, "KVDelete"); err != nil {
		return rpc.KVEntry{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kvWriteLocked(rpc.KVEntry{Key: key, Deleted: true}, ifVersion)
}

func (f *Fake) kvWriteLocked(e rpc.KVEntry, ifVersion *uint64) (rpc.KVEntry, error) {
	if !strings.HasPrefix(e.Key, "/") {
		return rpc.KVEntry{}, rpc.BadRequest("kv key %q must start with '/'", e.Key)
	}
	if f.kv == nil {
		f.kv = kvState{}
	}
	var cur uint64
	if h := f.kv[e.Key]; len(h) > 0 {
		cur = h[0].Version
	}
	if ifVersion != nil && *ifVersion != cur {
		return rpc.KVEntry{}, rpc.Denied("%s is at version %d, not %d", e.Key, cur, *ifVersion)
	}
	now := f.now()
	f.seq++
	e.Version, e.Writer, e.Updated, e.Stamp = cur+1, f.node, now, strconv.FormatInt(now.UnixMilli(), 10)+"."+strconv.FormatUint(f.seq, 10)
	h := append([]rpc.KVEntry{e}, f.kv[e.Key]...)
	f.kv[e.Key] = h[:min(len(h), kvHistory)]
	op := "put"
	var v any = e
	if e.Deleted {
		op, v = "delete", nil
	}
	f.emitLocked(f.event("kv"+e.Key, op, v))
	return e, nil
}

func (f *Fake) liveKV(key string) (rpc.KVEntry, bool) {
	h := f.kv[key]
	if len(h) == 0 || h[0].Deleted || (!h[0].Expires.IsZero() && !f.now().Before(h[0].Expires)) {
		return rpc.KVEntry{}, false
	}
	return h[0], true
}

// KVGet implements rpc.API.
func (f *Fake) KVGet(ctx context.Context, key string) (rpc.KVEntry, error) {
	if err := f.before(ctx, "KVGet"); err != nil {
		return rpc.KVEntry{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.liveKV(key)
	if !ok {
		return rpc.KVEntry{}, rpc.NotFound("no kv key %s", key)
	}
	return e, nil
}

// KVList implements rpc.API.
func (f *Fake) KVList(ctx context.Context, prefix string) ([]rpc.KVEntry, error) {
	if err := f.before(ctx, "KVList"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []rpc.KVEntry{}
	for _, k := range slices.Sorted(maps.Keys(f.kv)) {
		if e, ok := f.liveKV(k); ok && strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	return out, nil
}

// KVHistory implements rpc.API.
func (f *Fake) KVHistory(ctx context.Context, key string) ([]rpc.KVEntry, error) {
	if err := f.before(ctx, "KVHistory"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := slices.Clone(f.kv[key])
	if len(h) == 0 {
		return nil, rpc.NotFound("no kv key %s", key)
	}
	h[0].Current = true
	return h, nil
}
