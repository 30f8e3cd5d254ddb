package rpc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ReadToken reads the API bearer token from the file at path: the file's
// content without surrounding whitespace. The file must exist, hold a
// token, and not be readable or writable by other users (mode 0600 or
// 0400 is right).
func ReadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("rpc: API token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("rpc: API token file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("rpc: API token file %s has mode %v: other users may read it; chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("rpc: API token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("rpc: API token file %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("rpc: API token file %s must hold one token on one line", path)
	}
	return tok, nil
}

// ErrNotLoopback is matched (errors.Is) by the error ListenLoopback returns
// for an address that is not a loopback address.
var ErrNotLoopback = errors.New("rpc: not a loopback address")

// CheckLoopback reports why addr (host:port) is not a loopback TCP address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("rpc: API address %q: want host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: the TCP API must listen on 127.0.0.1, ::1 or localhost, got %q", ErrNotLoopback, addr)
	}
	return nil
}
