package agent

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/gossip"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/wire"
)

// rawPeer is a member that speaks the protocol by hand: a gossip node
// that validates nothing, with its own node key, so that a test can
// publish whatever bytes it likes, signed by that key or not.
type rawPeer struct {
	*gossip.Node
	signer *identity.Signer
}

// newRawPeer joins the cluster's topics (cluster "default") through join
// with a fresh key.
func newRawPeer(t *testing.T, join []string) *rawPeer {
	t.Helper()
	key, _, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return newRawPeerWithKey(t, key, join)
}

// newRawPeerWithKey is newRawPeer with a given key.
func newRawPeerWithKey(t *testing.T, key crypto.PrivKey, join []string) *rawPeer {
	t.Helper()
	topics, lane := GossipTopics()
	n, err := gossip.New(context.Background(), gossip.Config{
		Cluster: "default", Topics: topics, Lane: lane, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: join,
		Identity: key, MaxMessageBytes: 4 << 20,
		Validate: func(string, []byte, peer.ID, bool) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s, err := identity.NewSigner(key, "default")
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{Node: n, signer: s}
}

// id is the raw peer's node id.
func (r *rawPeer) id() string { return r.signer.ID() }

// sign signs ds, which name the raw peer as writer, as one batch.
func (r *rawPeer) sign(t *testing.T, ds ...crdt.Delta) []crdt.Delta {
	t.Helper()
	if err := r.signer.Sign(ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// envelope encodes signed deltas.
func envelope(t *testing.T, ds ...crdt.Delta) []byte {
	t.Helper()
	b, err := wire.Encode(ds)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newAuthor returns a fresh node id.
func newAuthor(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
