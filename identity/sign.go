package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

// domain starts every message a cert signs, so that a cert's signature
// can never be taken for a signature the same key makes for another
// purpose (libp2p's handshakes sign under their own prefixes).
const domain = "rumor-cert-v1\x00"

// CertMessage returns the bytes a cert's signature covers: the domain
// "rumor-cert-v1\x00", the cluster and a 0 byte (a write in one cluster is
// no write in another), the number of deltas as a uvarint and their hashes,
// in batch order. Tests use it to make certs the Signer would not.
func CertMessage(cluster string, hashes [][wire.HashSize]byte) []byte {
	b := make([]byte, 0, len(domain)+len(cluster)+1+binary.MaxVarintLen64+len(hashes)*wire.HashSize)
	b = append(b, domain...)
	b = append(append(b, cluster...), 0)
	b = binary.AppendUvarint(b, uint64(len(hashes)))
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// Signer signs this node's deltas. It is safe for concurrent use.
type Signer struct {
	priv    ed25519.PrivateKey
	id      string
	cluster string
}

// NewSigner returns the signer of the node whose key is k, for cluster.
func NewSigner(k crypto.PrivKey, cluster string) (*Signer, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity: a %v key cannot sign deltas; rumor needs ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("identity: ed25519 key of %d bytes: %v", len(raw), err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("identity: node id: %w", err)
	}
	return &Signer{priv: ed25519.PrivateKey(raw), id: id.String(), cluster: cluster}, nil
}

// ID returns the node id deltas signed by s must name as their writer.
func (s *Signer) ID() string { return s.id }

// Sign signs ds, a batch of this node's deltas, with one signature: it
// sets each delta's proof to a cert shared by the batch, at its place in
// it. Every delta must name this node in its stamp.
func (s *Signer) Sign(ds []crdt.Delta) error {
	if len(ds) == 0 || len(ds) > 1<<16 {
		return fmt.Errorf("identity: cannot sign a batch of %d deltas", len(ds))
	}
	cert := &crdt.Cert{Hashes: make([][wire.HashSize]byte, len(ds))}
	for i, d := range ds {
		if d.Stamp.Node != s.id {
			return fmt.Errorf("identity: delta for %q names writer %s, not this node", d.Key, d.Stamp.Node)
		}
		cert.Hashes[i] = wire.Hash(d)
	}
	copy(cert.Sig[:], ed25519.Sign(s.priv, CertMessage(s.cluster, cert.Hashes)))
	for i := range ds {
		ds[i].Proof = crdt.Proof{Cert: cert, Pos: uint16(i)}
	}
	return nil
}

// Errors of Verify.
var (
	// ErrUnsigned: the delta carries no proof.
	ErrUnsigned = errors.New("identity: delta is not signed")
	// ErrForged: the delta's proof does not show that the node its stamp
	// names wrote it (a bad signature, a cert that does not list the
	// delta, a writer id that is no ed25519 key).
	ErrForged = errors.New("identity: signature does not verify for the writer the delta names")
)

// Verifier checks deltas' proofs. It remembers the keys of the writers it
// has seen and the certs it has verified (a bounded cache), so a cert that
// arrives again — a duplicate, or by anti-entropy after gossip — costs a
// hash, not a signature check. It is safe for concurrent use.
type Verifier struct {
	cluster  string
	keys     *lru.Cache[string, ed25519.PublicKey]
	verified *lru.Cache[[wire.SigSize]byte, [sha256.Size]byte]
}

// Cache sizes of a Verifier.
const (
	keyCache  = 4096
	certCache = 16384
)

// NewVerifier returns a verifier of deltas written in cluster.
func NewVerifier(cluster string) *Verifier {
	keys, _ := lru.New[string, ed25519.PublicKey](keyCache)
	verified, _ := lru.New[[wire.SigSize]byte, [sha256.Size]byte](certCache)
	return &Verifier{cluster: cluster, keys: keys, verified: verified}
}

// Verify checks that each delta of ds was signed by the node its stamp
// names, and returns one error per delta (nil for a verified one):
// ErrUnsigned or ErrForged, wrapped with the key.
func (v *Verifier) Verify(ds []crdt.Delta) []error {
	errs := make([]error, len(ds))
	type certOf struct {
		cert   *crdt.Cert
		writer string
	}
	checked := make(map[certOf]error, 1)
	for i, d := range ds {
		c := d.Proof.Cert
		switch {
		case c == nil:
			errs[i] = fmt.Errorf("%q by %s: %w", d.Key, d.Stamp.Node, ErrUnsigned)
			continue
		case int(d.Proof.Pos) >= len(c.Hashes) || c.Hashes[d.Proof.Pos] != wire.Hash(d):
			errs[i] = fmt.Errorf("%q by %s: %w (its cert does not list it)", d.Key, d.Stamp.Node, ErrForged)
			continue
		}
		k := certOf{c, d.Stamp.Node}
		err, ok := checked[k]
		if !ok {
			err = v.verifyCert(c, d.Stamp.Node)
			checked[k] = err
		}
		if err != nil {
			errs[i] = fmt.Errorf("%q: %w", d.Key, err)
		}
	}
	return errs
}

// verifyCert checks c's signature by writer.
func (v *Verifier) verifyCert(c *crdt.Cert, writer string) error {
	pub, err := v.key(writer)
	if err != nil {
		return err
	}
	msg := CertMessage(v.cluster, c.Hashes)
	h := sha256.New()
	h.Write([]byte(writer))
	h.Write([]byte{0})
	h.Write(msg)
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	if d, ok := v.verified.Get(c.Sig); ok && d == digest {
		return nil
	}
	if !ed25519.Verify(pub, msg, c.Sig[:]) {
		return fmt.Errorf("by %s: %w", writer, ErrForged)
	}
	v.verified.Add(c.Sig, digest)
	return nil
}

// key returns writer's public key, from its node id.
func (v *Verifier) key(writer string) (ed25519.PublicKey, error) {
	if k, ok := v.keys.Get(writer); ok {
		return k, nil
	}
	id, err := peer.Decode(writer)
	if err != nil {
		return nil, fmt.Errorf("writer %q is not a node id: %w", writer, ErrForged)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil || pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("writer %s has no ed25519 key in its id: %w", writer, ErrForged)
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("writer %s: %w", writer, ErrForged)
	}
	v.keys.Add(writer, raw)
	return raw, nil
}
