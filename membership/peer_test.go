package membership

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDialInfoDialsOnlyTheNodesOwnAddresses: of the addresses in a
// node/<id> entry, only those that end in /p2p/<id> are dialled;
// addresses without a /p2p/ component, naming another node, or going
// through one, are dropped.
func TestDialInfoDialsOnlyTheNodesOwnAddresses(t *testing.T) {
	self, other := newPeerID(t), newPeerID(t)
	own := "/ip4/10.0.0.1/tcp/7946/p2p/" + self.String()
	ownQUIC := "/ip4/10.0.0.1/udp/7946/quic-v1/p2p/" + self.String()
	for _, tc := range []struct {
		name  string
		id    string
		addrs []string
		want  []string // dialled addresses; nil: nothing to dial
	}{
		{"own addresses", self.String(), []string{own, ownQUIC}, []string{"/ip4/10.0.0.1/tcp/7946", "/ip4/10.0.0.1/udp/7946/quic-v1"}},
		{"no /p2p/ component", self.String(), []string{"/ip4/10.0.0.9/tcp/22"}, nil},
		{"another node's address", self.String(), []string{"/ip4/10.0.0.9/tcp/7946/p2p/" + other.String()}, nil},
		{"through another node", self.String(), []string{"/ip4/10.0.0.9/tcp/7946/p2p/" + other.String() + "/p2p-circuit/p2p/" + self.String()}, nil},
		{"only /p2p/", self.String(), []string{"/p2p/" + self.String()}, nil},
		{"not a multiaddr", self.String(), []string{"10.0.0.9:7946"}, nil},
		{"mixed: only its own kept", self.String(), []string{
			"/ip4/10.0.0.9/tcp/22",
			"/ip4/10.0.0.9/tcp/7946/p2p/" + other.String(),
			own,
			"/dns4/victim.example/tcp/443",
		}, []string{"/ip4/10.0.0.1/tcp/7946"}},
		{"key is no node id", "not-an-id", []string{own}, nil},
		{"key names another node", other.String(), []string{own}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ai, ok := DialInfo(tc.id, tc.addrs)
			var got []string
			for _, a := range ai.Addrs {
				got = append(got, a.String())
			}
			if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
				t.Fatalf("DialInfo(%s, %q) = %v, %v; want %v", tc.id, tc.addrs, got, ok, tc.want)
			}
			if ok && ai.ID.String() != tc.id {
				t.Errorf("ID = %s, want %s", ai.ID, tc.id)
			}
		})
	}
}
