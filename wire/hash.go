package wire

import (
	"crypto/sha256"
	"sync"

	"github.com/rumor-dev/rumor/crdt"
)

// HashSize is the size of a delta's hash.
const HashSize = sha256.Size

// AppendCanonical appends the canonical bytes of d, the bytes its hash
// covers: the CBOR array [key, hlc, node, op, expiry, epoch, task, value]
// in the shortest form, with the writer's id in full. Every field that a
// merge or a reader looks at is in it; the proof is not.
func AppendCanonical(b []byte, d crdt.Delta) []byte {
	b = appendHead(b, majArray, 8)
	b = append(appendHead(b, majText, uint64(len(d.Key))), d.Key...)
	b = appendHead(b, majUint, uint64(d.Stamp.HLC))
	b = append(appendHead(b, majText, uint64(len(d.Stamp.Node))), d.Stamp.Node...)
	b = appendHead(b, majUint, uint64(d.Op))
	b = appendInt(b, d.Expiry)
	b = appendHead(b, majUint, d.Epoch)
	b = appendHead(b, majUint, uint64(d.Task))
	return append(appendHead(b, majBytes, uint64(len(d.Value))), d.Value...)
}

var canonBuf = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Hash returns the SHA-256 of d's canonical bytes: what a cert lists for d
// and its writer's signature covers.
func Hash(d crdt.Delta) [HashSize]byte {
	p := canonBuf.Get().(*[]byte)
	b := AppendCanonical((*p)[:0], d)
	h := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*p = b
		canonBuf.Put(p)
	}
	return h
}
