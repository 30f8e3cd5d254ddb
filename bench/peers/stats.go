package main

import (
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rumor-dev/rumor/bench/benchstat"
)

// Message layout, shared by both peers: byte 0 is the phase tag, bytes 1-8
// the sequence number (big-endian), the rest padding up to the payload size.
const (
	tagWarmup  byte = 'w'
	tagTimed   byte = 't'
	headerSize      = 9
)

// newMessage returns a size-byte message (at least headerSize) carrying
// tag and seq.
func newMessage(tag byte, seq uint64, size int) []byte {
	b := make([]byte, max(size, headerSize))
	b[0] = tag
	binary.BigEndian.PutUint64(b[1:headerSize], seq)
	for i := headerSize; i < len(b); i++ {
		b[i] = 'p'
	}
	return b
}

// parseMessage returns the tag and sequence number of a message made by
// newMessage; ok is false for anything shorter than the header.
func parseMessage(b []byte) (tag byte, seq uint64, ok bool) {
	if len(b) < headerSize {
		return 0, 0, false
	}
	return b[0], binary.BigEndian.Uint64(b[1:headerSize]), true
}

// tracker times messages from just before the publish call until the last
// of the expected receivers had them, like rumor-bench's tracker but keyed
// by sequence number.
type tracker struct {
	mu      sync.Mutex
	pending map[uint64]*sample
	done    []time.Duration
	bySeq   map[uint64]time.Duration
}

type sample struct {
	start time.Time
	seen  []bool // by receiver index
	left  int
	last  time.Time
}

func newTracker() *tracker {
	return &tracker{pending: make(map[uint64]*sample), bySeq: make(map[uint64]time.Duration)}
}

// begin starts timing message seq, which receivers 0..receivers-1 other
// than skip (the writer, or -1 for none) must get. Call it just before the
// publish.
func (t *tracker) begin(seq uint64, receivers, skip int) {
	s := &sample{seen: make([]bool, receivers), left: receivers}
	if skip >= 0 && skip < receivers {
		s.seen[skip] = true
		s.left--
	}
	t.mu.Lock()
	t.pending[seq] = s
	s.start = time.Now()
	t.mu.Unlock()
}

// seen records that receiver got seq at time at; repeats and unknown
// sequence numbers are ignored.
func (t *tracker) seen(seq uint64, receiver int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.pending[seq]
	if !ok || receiver < 0 || receiver >= len(s.seen) || s.seen[receiver] {
		return
	}
	s.seen[receiver] = true
	s.left--
	if at.After(s.last) {
		s.last = at
	}
	if s.left <= 0 {
		d := s.last.Sub(s.start)
		t.done = append(t.done, d)
		t.bySeq[seq] = d
		delete(t.pending, seq)
	}
}

// outstanding returns how many begun messages some receiver still lacks.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// latency returns the latency of seq, and whether it completed.
func (t *tracker) latency(seq uint64) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.bySeq[seq]
	return d, ok
}

// latencies returns the completed messages' latencies in completion order.
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.done)
}

// cpuMeter measures CPU use over an interval: this process's, an optional
// other process's (the Redis server) and everyone else's.
type cpuMeter struct {
	wall      time.Time
	self, all time.Duration
	pid       int
	proc      time.Duration
}

// startCPUMeter starts measuring; pid > 0 names a process measured apart.
func startCPUMeter(pid int) cpuMeter {
	m := cpuMeter{wall: time.Now(), self: benchstat.CPUTime(), all: benchstat.MachineBusy(), pid: pid}
	if pid > 0 {
		m.proc = benchstat.ProcessCPU(pid)
	}
	return m
}

// cores returns the cores this process, the process named at start (0
// without one) and all other processes kept busy on average since the
// meter started (others is 0 where unknown).
func (m cpuMeter) cores() (self, proc, others float64) {
	wall := time.Since(m.wall).Seconds()
	if wall <= 0 {
		return 0, 0, 0
	}
	selfUsed := benchstat.CPUTime() - m.self
	var procUsed time.Duration
	if m.pid > 0 {
		procUsed = max(benchstat.ProcessCPU(m.pid)-m.proc, 0)
	}
	self, proc = selfUsed.Seconds()/wall, procUsed.Seconds()/wall
	if m.all > 0 {
		others = max((benchstat.MachineBusy()-m.all-selfUsed-procUsed).Seconds(), 0) / wall
	}
	return self, proc, others
}

// udpErrors returns the machine's UDP InErrors and RcvbufErrors counters
// from /proc/net/snmp, zeros where unavailable.
func udpErrors() (inErrors, rcvbufErrors int64) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0
	}
	return parseSNMPUDP(string(b))
}

// parseSNMPUDP reads InErrors and RcvbufErrors from the text of
// /proc/net/snmp, where a "Udp:" header line names the fields of the
// "Udp:" line after it.
func parseSNMPUDP(s string) (inErrors, rcvbufErrors int64) {
	var header []string
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i := 1; i < len(f) && i < len(header); i++ {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				continue
			}
			switch header[i] {
			case "InErrors":
				inErrors = n
			case "RcvbufErrors":
				rcvbufErrors = n
			}
		}
		return inErrors, rcvbufErrors
	}
	return 0, 0
}
