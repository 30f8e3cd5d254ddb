package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RedisInfo describes the Redis server measured.
type RedisInfo struct {
	Addr       string `json:"addr"`
	Version    string `json:"version"`
	Save       string `json:"save"`
	AppendOnly string `json:"appendonly"`
	PID        int    `json:"pid,omitempty"`
	Client     string `json:"client"`
}

// redisClientNote says what the client is.
const redisClientNote = "plain RESP2 over net.Conn (no client library): one TCP connection per subscriber, one pipelined publisher connection"

// redisConfig is how to reach the server.
type redisConfig struct {
	addr string
	pid  int           // the server's process id, for its CPU; 0 if unknown
	wait time.Duration // how long to retry the first connection
}

// dialRedis connects to addr, retrying until wait has passed (the server
// may just have started).
func dialRedis(ctx context.Context, addr string, wait time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(wait)
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to redis at %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends one command on c and reads its reply; an error reply is
// returned as the error.
func do(c net.Conn, r *bufio.Reader, args ...string) (any, error) {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(command(args...)); err != nil {
		return nil, err
	}
	v, err := readValue(r)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(respError); ok {
		return nil, e
	}
	return v, nil
}

// redisServerInfo asks the server for its version and persistence
// settings, and checks that it answers PING.
func redisServerInfo(ctx context.Context, cfg redisConfig) (RedisInfo, error) {
	info := RedisInfo{Addr: cfg.addr, PID: cfg.pid, Client: redisClientNote}
	c, err := dialRedis(ctx, cfg.addr, cfg.wait)
	if err != nil {
		return info, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// The server may still be loading: retry PING for a while.
	deadline := time.Now().Add(cfg.wait)
	for {
		v, err := do(c, r, "PING")
		if err == nil && v == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("redis at %s does not answer PING: %v %v", cfg.addr, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := do(c, r, "INFO", "server"); err == nil {
		if b, ok := v.([]byte); ok {
			for line := range strings.SplitSeq(string(b), "\n") {
				if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "redis_version" {
					info.Version = val
				}
			}
		}
	}
	for _, key := range []string{"save", "appendonly"} {
		v, err := do(c, r, "CONFIG", "GET", key)
		if err != nil {
			continue
		}
		if arr, ok := v.([]any); ok && len(arr) == 2 {
			val, _ := arr[1].([]byte)
			if key == "save" {
				info.Save = fmt.Sprintf("%q", val)
			} else {
				info.AppendOnly = string(val)
			}
		}
	}
	return info, nil
}

// redisPeer is n subscriber connections on one channel and one publisher
// connection.
type redisPeer struct {
	cfg     redisConfig
	channel string
	subs    []net.Conn
	pub     net.Conn
	pw      *bufio.Writer
	buf     []byte
	args    [3][]byte
	closing atomic.Bool
	wg      sync.WaitGroup

	mu       sync.Mutex
	problems []string
	nProblem int64
}

// channelSeq makes every figure's channel name unique.
var channelSeq atomic.Int64

// openRedis returns an opener of n subscribers on a fresh channel.
func openRedis(cfg redisConfig) opener {
	return func(ctx context.Context, n int, h *hub) (peer, time.Duration, error) {
		start := time.Now()
		rp := &redisPeer{cfg: cfg, channel: fmt.Sprintf("rumor-bench-peers/%d/%d", os.Getpid(), channelSeq.Add(1))}
		fail := func(err error) (peer, time.Duration, error) {
			rp.close()
			return nil, 0, err
		}
		for i := range n {
			c, err := dialRedis(ctx, cfg.addr, cfg.wait)
			if err != nil {
				return fail(err)
			}
			rp.subs = append(rp.subs, c)
			r := bufio.NewReaderSize(c, 64<<10)
			if _, err := c.Write(command("SUBSCRIBE", rp.channel)); err != nil {
				return fail(err)
			}
			v, err := readValue(r)
			if err != nil {
				return fail(fmt.Errorf("subscriber %d: %w", i, err))
			}
			if arr, ok := v.([]any); !ok || len(arr) != 3 || string(asBytes(arr[0])) != "subscribe" {
				return fail(fmt.Errorf("subscriber %d: unexpected SUBSCRIBE reply %v", i, v))
			}
			rp.wg.Go(func() { rp.readSubscriber(i, r, h) })
		}
		c, err := dialRedis(ctx, cfg.addr, cfg.wait)
		if err != nil {
			return fail(err)
		}
		rp.pub, rp.pw = c, bufio.NewWriterSize(c, 64<<10)
		rp.args[0], rp.args[1] = []byte("PUBLISH"), []byte(rp.channel)
		rp.wg.Go(func() { rp.readReplies(bufio.NewReaderSize(c, 64<<10), n) })
		return rp, time.Since(start), nil
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// readSubscriber delivers every message subscriber i receives.
func (rp *redisPeer) readSubscriber(i int, r *bufio.Reader, h *hub) {
	for {
		v, err := readValue(r)
		at := time.Now()
		if err != nil {
			if !rp.closing.Load() {
				rp.problem(fmt.Sprintf("subscriber %d: %v", i, err))
			}
			return
		}
		if _, payload, ok := pubsubMessage(v); ok {
			if tag, seq, ok := parseMessage(payload); ok {
				h.deliver(i, tag, seq, at)
			}
		}
	}
}

// readReplies reads the publisher's replies: each PUBLISH answers with
// how many subscribers got the message, which must be all n.
func (rp *redisPeer) readReplies(r *bufio.Reader, n int) {
	short := 0
	for {
		v, err := readValue(r)
		if err != nil {
			if !rp.closing.Load() {
				rp.problem(fmt.Sprintf("publisher: %v", err))
			}
			return
		}
		switch v := v.(type) {
		case int64:
			if v != int64(n) {
				short++
				if short <= 3 {
					rp.problem(fmt.Sprintf("PUBLISH reached %d of %d subscribers", v, n))
				}
			}
		case respError:
			rp.problem(fmt.Sprintf("PUBLISH: %v", v))
		}
	}
}

// problem records a warning or error.
func (rp *redisPeer) problem(s string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.nProblem++
	if len(rp.problems) < 10 {
		rp.problems = append(rp.problems, s)
	}
}

func (rp *redisPeer) receivers() int { return len(rp.subs) }
func (rp *redisPeer) writers() int   { return 1 }
func (rp *redisPeer) self(int) int   { return -1 }
func (rp *redisPeer) serverPID() int { return rp.cfg.pid }

// publish buffers one PUBLISH; it flushes once 8 KiB are waiting, so a
// pipelined run sends many per write while a single message waits for
// flush.
func (rp *redisPeer) publish(_ int, msg []byte) error {
	rp.args[2] = msg
	rp.buf = appendCommand(rp.buf[:0], rp.args[:]...)
	if _, err := rp.pw.Write(rp.buf); err != nil {
		return err
	}
	if rp.pw.Buffered() >= 8<<10 {
		return rp.pw.Flush()
	}
	return nil
}

func (rp *redisPeer) flush() error { return rp.pw.Flush() }

func (rp *redisPeer) stats() peerStats {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return peerStats{Problems: append([]string(nil), rp.problems...), ProblemCount: rp.nProblem}
}

// close closes every connection and waits for the readers.
func (rp *redisPeer) close() error {
	rp.closing.Store(true)
	var errs []error
	for _, c := range rp.subs {
		errs = append(errs, c.Close())
	}
	if rp.pub != nil {
		errs = append(errs, rp.pub.Close())
	}
	rp.wg.Wait()
	return errors.Join(errs...)
}
