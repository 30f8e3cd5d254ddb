package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// memoryStore names the store figure 4 fills, for the report: the agent's
// in-memory index, without the bbolt file an agent persists to.
const memoryStore = "in-memory store (store.New(), no bbolt persistence)"

// MemoryResult is figure 4 at one key count: heap held by a store per svc key.
type MemoryResult struct {
	// Store says which store was measured (in-memory, not persistent).
	Store string `json:"store"`
	Keys  int    `json:"keys"`
	// PerBatch is how many deltas each writer signed as one batch (one
	// cert, shared by them in the store): 256 as a busy publisher sends
	// them, 1 as an idle one does.
	PerBatch     int     `json:"per_batch"`
	PayloadBytes int     `json:"payload_bytes"`
	KeyBytes     int     `json:"key_bytes"`
	HeapBefore   uint64  `json:"heap_before"`
	HeapAfter    uint64  `json:"heap_after"`
	BytesPerKey  float64 `json:"bytes_per_key"`
	Seconds      float64 `json:"seconds"`
}

// runMemory fills a fresh store with keys svc entries written by 30 nodes,
// as an agent would hold them after receiving them: each writer signs its
// deltas in batches of perBatch, and each batch is encoded for the wire and
// decoded again before it is applied, so keys, node ids, values and certs
// are separate allocations as on a receiver.
func runMemory(keys, payload, perBatch int) (MemoryResult, error) {
	res := MemoryResult{Store: memoryStore, Keys: keys, PayloadBytes: payload, PerBatch: perBatch}
	signers := make([]*identity.Signer, 30)
	for i := range signers {
		k, _, err := identity.Generate()
		if err != nil {
			return res, err
		}
		if signers[i], err = identity.NewSigner(k, "bench"); err != nil {
			return res, err
		}
	}
	value := crdt.Encode(crdt.ServiceValue{Addr: "10.1.2.3:8080", Status: "up", Tags: servicePayload(payload).Tags})
	res.PayloadBytes = len(value)

	s := store.New()
	before := heapAlloc()
	began := time.Now()
	wall := time.Now().UnixMilli()
	batch := make([]crdt.Delta, 0, perBatch)
	var writer *identity.Signer
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := writer.Sign(batch); err != nil {
			return err
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
		writer = signers[(i/perBatch)%len(signers)]
		batch = append(batch, crdt.Delta{
			Key:   key,
			Op:    crdt.OpPut,
			Stamp: crdt.Stamp{HLC: crdt.MakeHLC(wall+int64(i/1000), uint16(i%1000)), Node: writer.ID()},
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
