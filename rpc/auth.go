package rpc

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// requireToken serves h only to requests that carry "Authorization: Bearer
// <token>"; others get 401 with CodeUnauthorized. The comparison takes the
// same time whatever the token presented.
func requireToken(token string, h http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			msg := "this API needs \"Authorization: Bearer <token>\" with the agent's api_token_file token"
			if ok {
				msg = "wrong API token"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="rumor"`)
			writeJSONError(w, &Error{Code: CodeUnauthorized, Message: msg})
			return
		}
		h.ServeHTTP(w, r)
	})
}

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

// ListenLoopback listens on the TCP address addr (host:port), which must
// name a loopback IP (127.0.0.0/8 or ::1) or "localhost": the TCP API is
// for this host's users only, never the network.
func ListenLoopback(addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("%w: %q resolved to %v", ErrNotLoopback, addr, ln.Addr())
	}
	return ln, nil
}

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
