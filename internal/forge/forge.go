// Package forge makes what an attacker who is a member of a cluster can
// make with its own key: certs over deltas in any writer's name. Tests use
// it to prove every path refuses them; nothing else may import it.
package forge

import (
	"crypto/ed25519"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/identity"
	"github.com/rumor-dev/rumor/wire"
)

// Cert returns ds signed with priv as one cert, whatever writers their
// stamps name (identity.Signer refuses to sign another writer's delta).
func Cert(priv ed25519.PrivateKey, cluster string, ds []crdt.Delta) []crdt.Delta {
	c := &crdt.Cert{Hashes: make([][wire.HashSize]byte, len(ds))}
	for i, d := range ds {
		c.Hashes[i] = wire.Hash(d)
	}
	copy(c.Sig[:], ed25519.Sign(priv, identity.CertMessage(cluster, c.Hashes)))
	out := slices.Clone(ds)
	for i := range out {
		out[i].Proof = crdt.Proof{Cert: c, Pos: uint16(i)}
	}
	return out
}

// Ed25519 returns the raw ed25519 key of a libp2p ed25519 key.
func Ed25519(k crypto.PrivKey) ed25519.PrivateKey {
	raw, err := k.Raw()
	if err != nil {
		panic(err) // an ed25519 libp2p key always has a raw form
	}
	return ed25519.PrivateKey(raw)
}
