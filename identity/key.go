// Package identity holds a node's key and what it proves: the libp2p
// ed25519 key in <data_dir>/identity.key names the node (its peer id is the
// node id) and signs the node's writes. A Signer signs a batch of deltas
// with one signature (a crdt.Cert over the hashes of the batch); a Verifier
// checks, for any delta that arrives by any path, that the node its stamp
// names signed it. Nothing else in rumor decides who wrote a delta.
package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// File is the name of the node key inside the data dir.
const File = "identity.key"

// LoadOrCreate reads the node key from dataDir, creating it (mode 0600,
// and the directory 0700) on first start, so the node keeps its id across
// restarts. A file that exists but cannot be parsed is an error, never
// silently replaced.
func LoadOrCreate(dataDir string) (crypto.PrivKey, error) {
	path := filepath.Join(dataDir, File)
	k, err := Read(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create data dir: %w", err)
	}
	k, b, err := Generate()
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, fmt.Errorf("identity: write key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("identity: write key: %w", err)
	}
	return k, nil
}

// Read reads the key file at path. A missing file is an error wrapping
// fs.ErrNotExist; a file that does not parse, or holds a key that is not
// ed25519, is an error naming the file.
func Read(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: read key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity: key %s is corrupt (move it away to start as a new node): %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity: key %s is %v; rumor signs with ed25519 keys (create one with `rumor keygen`)", path, k.Type())
	}
	return k, nil
}

// Generate returns a new ed25519 node key and its file encoding.
func Generate() (crypto.PrivKey, []byte, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: generate key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: encode key: %w", err)
	}
	return k, b, nil
}

// NodeID returns the node id of the key file in dataDir, without creating
// one.
func NodeID(dataDir string) (peer.ID, error) {
	path := filepath.Join(dataDir, File)
	k, err := Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no identity key at %s yet: the agent creates one on its first start with this data dir, or create it now with `rumor keygen --out %s`", path, path)
	}
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(k)
}

// NewPSKFile returns a fresh 32-byte private-network key in the v1 format
// that pnet.DecodeV1PSK reads.
func NewPSKFile() []byte {
	var key [32]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(key[:]) + "\n")
}
