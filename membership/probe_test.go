package membership

import (
	"bytes"
	"errors"
	"testing"
)

func TestProbeMessagesRoundTrip(t *testing.T) {
	target := newPeerID(t)
	for _, r := range []request{
		{kind: kindPing, view: Suspect, inc: 1 << 40, wallMS: 1765000000000},
		{kind: kindPing, view: 0, inc: 0},
		{kind: kindPingReq, timeoutMS: 1200, target: target},
	} {
		got, err := decodeRequest(bytes.NewReader(r.encode()))
		if err != nil || got != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
	for _, v := range []verdict{noAnswer, answered, notConnected} {
		got, inc, err := decodeAnswer(bytes.NewReader(encodeAnswer(v, 77)))
		if got != v || inc != 77 || err != nil {
			t.Fatalf("answer %d: %v %d %v", v, got, inc, err)
		}
	}
}

func TestProbeDecoderRefusesMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"unknown kind":     {0x07},
		"short ping":       {kindPing, 1, 0},
		"bad view state":   append([]byte{kindPing, 9}, make([]byte, 8)...),
		"short ping-req":   {kindPingReq, 0, 0},
		"truncated id":     {kindPingReq, 0, 0, 0, 10, 5, 1, 2},
		"target not an id": {kindPingReq, 0, 0, 0, 10, 3, 'a', 'b', 'c'},
	} {
		if _, err := decodeRequest(bytes.NewReader(b)); !errors.Is(err, ErrBadProbe) {
			t.Errorf("%s: err %v, want ErrBadProbe", name, err)
		}
	}
	if _, _, err := decodeAnswer(bytes.NewReader([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0})); !errors.Is(err, ErrBadProbe) {
		t.Errorf("bad answer verdict: %v", err)
	}
}

// FuzzDecodeRequest: any input decodes to a request that encodes back to
// the bytes it was read from, or is refused; nothing panics.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(request{kind: kindPing, view: Dead, inc: 5}.encode())
	f.Add([]byte{kindPingReq, 0, 0, 1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := bytes.NewReader(b)
		r, err := decodeRequest(rd)
		if err != nil {
			return
		}
		used := b[:len(b)-rd.Len()]
		if enc := r.encode(); !bytes.Equal(enc, used) {
			t.Fatalf("decoded %+v from %x, encodes to %x", r, used, enc)
		}
	})
}
