package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/rumor-dev/rumor/rpc"
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
		s.writeError(w, r, &rpc.Error{Code: rpc.CodeNotFound, Message: "this agent does not serve backups"})
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
