package rpc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Backuper is implemented by an API that can export a consistent snapshot
// of its state (the agent does). The server serves it as
// GET /v1/backup, an application/octet-stream body with a Content-Length,
// exempt from the request timeout (a large state takes a while).
type Backuper interface {
	// Backup calls begin once with the snapshot's exact size, before
	// writing it to the writer begin returns.
	Backup(ctx context.Context, begin func(size int64) (io.Writer, error)) (int64, error)
}

// backup serves GET /v1/backup.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	b, ok := s.api.(Backuper)
	if !ok {
		s.writeError(w, r, &Error{Code: CodeNotFound, Message: "this agent does not serve backups"})
		return
	}
	started := false
	_, err := b.Backup(r.Context(), func(size int64) (io.Writer, error) {
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return w, nil
	})
	switch {
	case err == nil:
	case !started:
		s.writeError(w, r, err)
	default:
		// The length is announced: the client sees a short body.
		s.log.Warn("rpc: backup interrupted", "err", err)
	}
}

// Backup streams a consistent snapshot of the agent's state to w and
// returns its size. A snapshot cut short (the agent stopped, the
// connection broke) is an error, never a short success.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, responseError(resp)
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("rpc: backup: the agent announced no length")
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("rpc: backup: read snapshot (%d of %d bytes): %w", n, resp.ContentLength, err)
	}
	return n, nil
}
