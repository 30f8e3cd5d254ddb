package antientropy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store"
	"github.com/rumor-dev/rumor/wire"
)

// pushKey runs one key exchange of key from a to b over a pipe.
func pushKey(a, b State, key string) (Stats, Stats, error, error) {
	return overPipe(
		func(rw io.ReadWriter) (Stats, error) { return PushKey(rw, a, key) },
		func(rw io.ReadWriter) (Stats, error) { return AnswerKey(rw, b) })
}

// TestKeyExchangeSwapsOneKey: a key exchange leaves both sides with every
// record of the key, and of no other key.
func TestKeyExchangeSwapsOneKey(t *testing.T) {
	k := func(ms int64, node string, op crdt.Op, epoch uint64, key string) crdt.Delta {
		return crdt.Delta{Key: key, Stamp: crdt.Stamp{HLC: crdt.MakeHLC(ms, 0), Node: node}, Op: op, Epoch: epoch, Expiry: ms + 60_000}
	}
	a, b := store.New(), store.New()
	a.Apply(sign(k(1000, "a", crdt.OpClaim, 1, "kernel/k1"), k(1000, "a", crdt.OpClaim, 1, "kernel/k10"))...)
	b.Apply(sign(k(999, "b", crdt.OpClaim, 1, "kernel/k1"), k(999, "b", crdt.OpClaim, 1, "kernel/other"))...)
	sa, sb, errA, errB := pushKey(replica{a}, replica{b}, "kernel/k1")
	if errA != nil || errB != nil {
		t.Fatalf("exchange: %v / %v", errA, errB)
	}
	ea, eb := mustGet(t, a, "kernel/k1"), mustGet(t, b, "kernel/k1")
	if !ea.Equal(eb) || len(ea.Deltas) != 2 {
		t.Fatalf("after the exchange: %+v vs %+v", ea.Deltas, eb.Deltas)
	}
	if crdt.Resolve(ea).Holder != "b" {
		t.Fatalf("holder %s, want b (the earlier claim)", crdt.Resolve(ea).Holder)
	}
	if _, ok := b.Get("kernel/k10"); ok {
		t.Fatal("a key that only shares the prefix travelled")
	}
	if _, ok := a.Get("kernel/other"); ok {
		t.Fatal("another key travelled")
	}
	// The answer is the key as it is after the merge: both records.
	if sa.Sent != 1 || sa.Received != 2 || sa.Repaired != 1 || sb.Received != 1 || sb.Repaired != 1 {
		t.Fatalf("stats %+v / %+v, want one record there and both back", sa, sb)
	}
}

// TestKeyExchangeRefusesOtherKeys: an asker that sends records of another
// key than the one it named is a protocol error, and nothing of it is
// merged.
func TestKeyExchangeRefusesOtherKeys(t *testing.T) {
	evil := sign(crdt.Delta{Key: "bl/l/x", Stamp: crdt.Stamp{HLC: 5, Node: "m"}, Op: crdt.OpPut})
	b := store.New()
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	done := make(chan error, 1)
	go func() {
		_, err := AnswerKey(cb, replica{b})
		cb.Close()
		done <- err
	}()
	// The asker names kernel/k but sends bl/l/x.
	w := bufio.NewWriter(ca)
	if err := writeFrame(w, frameKey, "kernel/k"); err != nil {
		t.Fatal(err)
	}
	enc, err := wire.Encode(evil)
	if err != nil {
		t.Fatal(err)
	}
	_ = writeRaw(w, frameEntries, enc)
	_ = writeRaw(w, frameDone, nil)
	_ = w.Flush()
	if err := <-done; !errors.Is(err, ErrProtocol) {
		t.Fatalf("answer: %v, want a protocol error", err)
	}
	if b.Len() != 0 {
		t.Fatalf("merged %d keys from a bad exchange", b.Len())
	}
}

// FuzzAnswerKey: the key exchange's answering side never panics on any
// byte stream, and merges nothing but records of the key it was asked.
func FuzzAnswerKey(f *testing.F) {
	f.Add([]byte{frameKey, 9, 0x68, 'k', 'e', 'r', 'n', 'e', 'l', '/', 'k', frameDone, 0})
	f.Add([]byte{frameKey, 3, 0x62, 'b', 'l'})
	f.Add([]byte{frameDone, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		st := store.New()
		_, _ = AnswerKey(rw{bytes.NewReader(in), &bytes.Buffer{}}, replica{st})
		if keys := st.List(""); len(keys) > 1 {
			t.Fatalf("merged %d keys from one key exchange", len(keys))
		}
	})
}
