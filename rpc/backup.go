package rpc

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

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
