package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ProbeProtocol returns the libp2p protocol id of the probe exchange for a
// cluster.
func ProbeProtocol(cluster string) string { return "/rumor/" + cluster + "/probe/1" }

// The probe exchange is one request and one answer on a fresh stream, in a
// fixed binary layout (big-endian):
//
//	ping:     0x01, view state (1 byte), view incarnation (8 bytes), sender's wall clock (Unix ms, 8 bytes)
//	ping-req: 0x02, timeout ms (4 bytes), target id length (1 byte), target id
//	answer:   verdict (1 byte: 0 no answer, 1 answered, 2 not connected), incarnation (8 bytes)
//
// A ping carries what the prober believes of the pinged node, so a node
// held suspect or dead learns it from the first probe that reaches it and
// refutes, and the pinged node learns how its clock compares with the
// prober's (a clock far ahead of its peers' makes them refuse its
// writes, and the node says so in its log). A ping-req asks the receiver to ping target within the timeout
// and to say whether it answered (or that the helper has no connection to
// it: no evidence either way); its answer's incarnation is 0 (a helper
// cannot speak for another node's incarnation).
const (
	kindPing    = 0x01
	kindPingReq = 0x02
	pingLen     = 18
	answerLen   = 9
	maxRequest  = 1 + 4 + 1 + 255
)

// request is a decoded probe request.
type request struct {
	kind      byte
	view      State  // ping: the prober's view of this node
	inc       uint64 // ping: the incarnation that view is of
	wallMS    int64  // ping: the sender's wall clock
	timeoutMS uint32 // ping-req
	target    peer.ID
}

// ErrBadProbe is returned for a malformed probe message.
var ErrBadProbe = errors.New("membership: malformed probe message")

func (r request) encode() []byte {
	switch r.kind {
	case kindPing:
		b := make([]byte, pingLen)
		b[0], b[1] = kindPing, byte(r.view)
		binary.BigEndian.PutUint64(b[2:], r.inc)
		binary.BigEndian.PutUint64(b[10:], uint64(r.wallMS))
		return b
	default:
		id := []byte(r.target)
		b := make([]byte, 6, 6+len(id))
		b[0] = kindPingReq
		binary.BigEndian.PutUint32(b[1:], r.timeoutMS)
		b[5] = byte(len(id))
		return append(b, id...)
	}
}

// decodeRequest parses one request; it reads exactly the request's bytes.
func decodeRequest(rd io.Reader) (request, error) {
	var head [1]byte
	if _, err := io.ReadFull(rd, head[:]); err != nil {
		return request{}, err
	}
	switch head[0] {
	case kindPing:
		var b [pingLen - 1]byte
		if _, err := io.ReadFull(rd, b[:]); err != nil {
			return request{}, fmt.Errorf("%w: short ping: %v", ErrBadProbe, err)
		}
		r := request{kind: kindPing, view: State(b[0]), inc: binary.BigEndian.Uint64(b[1:9]), wallMS: int64(binary.BigEndian.Uint64(b[9:]))}
		if r.view > Dead {
			return request{}, fmt.Errorf("%w: view state %d", ErrBadProbe, b[0])
		}
		return r, nil
	case kindPingReq:
		var b [5]byte
		if _, err := io.ReadFull(rd, b[:]); err != nil {
			return request{}, fmt.Errorf("%w: short ping-req: %v", ErrBadProbe, err)
		}
		id := make([]byte, b[4])
		if _, err := io.ReadFull(rd, id); err != nil {
			return request{}, fmt.Errorf("%w: short ping-req target: %v", ErrBadProbe, err)
		}
		target, err := peer.IDFromBytes(id)
		if err != nil {
			return request{}, fmt.Errorf("%w: target: %v", ErrBadProbe, err)
		}
		return request{kind: kindPingReq, timeoutMS: binary.BigEndian.Uint32(b[:4]), target: target}, nil
	}
	return request{}, fmt.Errorf("%w: kind %#x", ErrBadProbe, head[0])
}

// verdict is what an answer says of the node pinged.
type verdict byte

const (
	noAnswer     verdict = 0 // the pinged node did not answer in time
	answered     verdict = 1
	notConnected verdict = 2 // a helper has no connection to the target
)

func encodeAnswer(v verdict, inc uint64) []byte {
	b := make([]byte, answerLen)
	b[0] = byte(v)
	binary.BigEndian.PutUint64(b[1:], inc)
	return b
}

func decodeAnswer(rd io.Reader) (v verdict, inc uint64, err error) {
	var b [answerLen]byte
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return noAnswer, 0, err
	}
	if verdict(b[0]) > notConnected {
		return noAnswer, 0, fmt.Errorf("%w: answer verdict %d", ErrBadProbe, b[0])
	}
	return verdict(b[0]), binary.BigEndian.Uint64(b[1:]), nil
}
