package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Summary is a latency distribution reduced to nearest-rank percentiles, in
// milliseconds. Its JSON form is the one rumor-bench writes.
type Summary struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Summarize returns the p50, p99 and maximum of ds by the nearest-rank
// method (the smallest sample with at least p% of the samples at or below
// it), as rumor-bench does. It does not modify ds. An empty input gives the
// zero Summary.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{
		N:     len(s),
		P50Ms: ms(percentile(s, 50)),
		P99Ms: ms(percentile(s, 99)),
		MaxMs: ms(s[len(s)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be non-empty and in ascending order.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String formats the summary for the tables, e.g. "1.23 / 4.56 / 7.89 ms (n=200)".
func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%s / %s / %s ms (n=%d)", fmtMs(s.P50Ms), fmtMs(s.P99Ms), fmtMs(s.MaxMs), s.N)
}

// fmtMs prints milliseconds with precision suited to their size.
func fmtMs(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

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
	m := cpuMeter{wall: time.Now(), self: cpuTime(), all: machineBusy(), pid: pid}
	if pid > 0 {
		m.proc = processCPU(pid)
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
	selfUsed := cpuTime() - m.self
	var procUsed time.Duration
	if m.pid > 0 {
		procUsed = max(processCPU(m.pid)-m.proc, 0)
	}
	self, proc = selfUsed.Seconds()/wall, procUsed.Seconds()/wall
	if m.all > 0 {
		others = max((machineBusy()-m.all-selfUsed-procUsed).Seconds(), 0) / wall
	}
	return self, proc, others
}

// cpuTime returns this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the user + system CPU time of process pid from
// /proc/<pid>/stat, 0 where unavailable.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	return parseProcStat(string(b))
}

// parseProcStat returns utime + stime from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func parseProcStat(s string) time.Duration {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// machineBusy returns the CPU time all processes on the machine have used
// since boot (user, nice, system, irq, softirq, steal), from /proc/stat; 0
// where unavailable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100
}

// loadAverage returns the 1-minute load average, or -1 where unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
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
