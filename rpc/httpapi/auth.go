package httpapi

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/rumor-dev/rumor/rpc"
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
			writeJSONError(w, &rpc.Error{Code: rpc.CodeUnauthorized, Message: msg})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ListenLoopback listens on the TCP address addr (host:port), which must
// name a loopback IP (127.0.0.0/8 or ::1) or "localhost": the TCP API is
// for this host's users only, never the network.
func ListenLoopback(addr string) (net.Listener, error) {
	if err := rpc.CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("%w: %q resolved to %v", rpc.ErrNotLoopback, addr, ln.Addr())
	}
	return ln, nil
}
