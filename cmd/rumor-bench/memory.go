package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// memoryStore names the store figure 4 fills, for the report: the agent's
// in-memory index, without the bbolt file an agent persists to.
const memoryStore = "in-memory store (store.New(), no bbolt persistence)"

// MemoryResult is figure 4 at one key count: heap held by a store per svc key.
type MemoryResult struct {
	// Store says which store was measured (in-memory, not persistent).
	Store        string  `json:"store"`
	Keys         int     `json:"keys"`
	PayloadBytes int     `json:"payload_bytes"`
	KeyBytes     int     `json:"key_bytes"`
	HeapBefore   uint64  `json:"heap_before"`
	HeapAfter    uint64  `json:"heap_after"`
	BytesPerKey  float64 `json:"bytes_per_key"`
	Seconds      float64 `json:"seconds"`
}

// runMemory fills a fresh store with keys svc entries written by 30 nodes,
// as an agent would hold them after receiving them: each batch of deltas is
// encoded for the wire and decoded again before it is applied, so keys,
// node ids and values are separate allocations as on a receiver.
func runMemory(keys, payload int, seed uint64) (MemoryResult, error) {
	res := MemoryResult{Store: memoryStore, Keys: keys, PayloadBytes: payload}
	rng := rand.New(rand.NewPCG(seed, 4))
	nodes := make([]string, 30)
	const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	for i := range nodes {
		var sb strings.Builder
		sb.WriteString("12D3KooW") // the shape of an Ed25519 peer id
		for range 44 {
			sb.WriteByte(b58[rng.IntN(len(b58))])
		}
		nodes[i] = sb.String()
	}
	value := crdt.Encode(crdt.ServiceValue{Addr: "10.1.2.3:8080", Status: "up", Tags: servicePayload(payload).Tags})
	res.PayloadBytes = len(value)

	s := store.New()
	before := heapAlloc()
	began := time.Now()
	wall := time.Now().UnixMilli()
	batch := make([]crdt.Delta, 0, 256)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		b, err := wire.Encode(batch)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		ds, err := wire.Decode(b, wire.Limits{})
		if err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if got := len(s.Apply(ds...)); got != len(ds) {
			return fmt.Errorf("store applied %d of %d new keys", got, len(ds))
		}
		batch = batch[:0]
		return nil
	}
	for i := range keys {
		key := fmt.Sprintf("svc/service-%03d/instance-%07d", i%100, i)
		res.KeyBytes = len(key)
		batch = append(batch, crdt.Delta{
			Key:   key,
			Op:    crdt.OpPut,
			Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall+int64(i/1000), uint16(i%1000)), Node: nodes[i%len(nodes)]},
			Value: value,
		})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	batch = nil
	res.Seconds = time.Since(began).Seconds()
	after := heapAlloc()
	if n := s.Len(); n != keys {
		return res, fmt.Errorf("store holds %d keys, want %d", n, keys)
	}
	runtime.KeepAlive(s)
	res.HeapBefore, res.HeapAfter = before, after
	res.BytesPerKey = (float64(after) - float64(before)) / float64(keys)
	return res, nil
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
