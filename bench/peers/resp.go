package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The Redis client is the RESP2 protocol over a plain net.Conn: a dozen
// lines, no hidden buffering, pooling, health-check pings or dropping of
// slow pub/sub readers, so what is timed is Redis itself.

// respError is an error reply ("-ERR …").
type respError string

func (e respError) Error() string { return "redis: " + string(e) }

// appendCommand appends args as a RESP array of bulk strings, the form
// every Redis command takes.
func appendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// command returns args as one RESP command.
func command(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return appendCommand(nil, bs...)
}

// maxBulk bounds a bulk string or array length read from the server.
const maxBulk = 512 << 20

// readValue reads one RESP2 value: a string for a simple string, []byte
// for a bulk string, int64 for an integer, []any for an array, nil for a
// null, and respError (as the value, not the error) for an error reply.
func readValue(r *bufio.Reader) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("redis: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return string(body), nil
	case '-':
		return respError(body), nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: bad integer %q", body)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > maxBulk {
			return nil, fmt.Errorf("redis: bad bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return nil, errors.New("redis: bulk string not terminated by CRLF")
		}
		return b[:n], nil
	case '*':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > maxBulk {
			return nil, fmt.Errorf("redis: bad array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readValue(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("redis: unknown reply type %q", line[0])
	}
}

// readLine reads one CRLF-terminated line without the CRLF.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("redis: reply line too long")
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errors.New("redis: reply line not terminated by CRLF")
	}
	return line[:len(line)-2], nil
}

// pubsubMessage returns the channel and payload of a pub/sub "message"
// push; ok is false for any other value (subscribe confirmations, …).
func pubsubMessage(v any) (channel string, payload []byte, ok bool) {
	arr, isArr := v.([]any)
	if !isArr || len(arr) != 3 {
		return "", nil, false
	}
	kind, _ := arr[0].([]byte)
	ch, _ := arr[1].([]byte)
	payload, isBytes := arr[2].([]byte)
	if string(kind) != "message" || !isBytes {
		return "", nil, false
	}
	return string(ch), payload, true
}
