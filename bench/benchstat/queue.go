package benchstat

import (
	"fmt"
	"sync"
	"time"
)

// QueueFigures are a work-queue run's figures: one submitter queues tasks
// as fast as it can while workers take them and mark them done. rumor-bench
// (figure 11) and the peers comparison (Redis BLMOVE) compute them from a
// QueueLog, the same way.
type QueueFigures struct {
	// Tasks is how many the submitter queued; SubmitSeconds is its loop's
	// duration and SubmitPerSec their quotient.
	Tasks         int     `json:"tasks"`
	SubmitSeconds float64 `json:"submit_seconds"`
	SubmitPerSec  float64 `json:"submit_per_sec"`
	// Done is how many distinct tasks a worker marked done; DrainSeconds
	// runs from just before the first submit until the last done, and
	// DrainPerSec is Done divided by it.
	Done         int     `json:"done"`
	DrainSeconds float64 `json:"drain_seconds"`
	DrainPerSec  float64 `json:"drain_per_sec"`
	// Take is the duration of every take that returned a task; Ack that
	// of every call that marked a task done; EndToEnd is each done task's
	// time from just before its submit until its done was acknowledged.
	Take     Summary `json:"take"`
	Ack      Summary `json:"ack"`
	EndToEnd Summary `json:"end_to_end"`
	// Takes counts the takes that returned a task, EmptyTakes those that
	// returned none (their wait ran out). TakenTwice counts tasks that more
	// than one take returned, Lost submitted tasks never done; both must
	// be 0.
	Takes      int `json:"takes"`
	EmptyTakes int `json:"empty_takes"`
	TakenTwice int `json:"taken_twice"`
	Lost       int `json:"lost"`
}

// QueueLog records a work-queue run for QueueFigures; it is safe for
// concurrent use by the submitter and the workers.
type QueueLog struct {
	mu          sync.Mutex
	submitBegan time.Time
	submitEnded time.Time
	submitted   map[string]time.Time // task id -> just before its submit
	takes       []time.Duration
	acks        []time.Duration
	takenBy     map[string]int // task id -> takes that returned it
	emptyTakes  int
	done        map[string]time.Time // task id -> its done acknowledged
	doneCount   int                  // tasks in done that were submitted
}

// NewQueueLog returns an empty log.
func NewQueueLog() *QueueLog {
	return &QueueLog{submitted: make(map[string]time.Time), takenBy: make(map[string]int), done: make(map[string]time.Time)}
}

// SubmitSpan records when the submit loop began (just before the first
// submit) and ended (after the last submit returned).
func (l *QueueLog) SubmitSpan(began, ended time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.submitBegan, l.submitEnded = began, ended
}

// Submitted records that task id's submit began at at. Call it before the
// submit, so that a worker's done cannot come first.
func (l *QueueLog) Submitted(id string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.submitted[id] = at
}

// Taken records a take that returned task id after took.
func (l *QueueLog) Taken(id string, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takes = append(l.takes, took)
	l.takenBy[id]++
}

// Empty records a take that returned no task.
func (l *QueueLog) Empty() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emptyTakes++
}

// Done records that task id's done was acknowledged at at, after a call of
// took, and returns how many distinct submitted tasks are done now.
func (l *QueueLog) Done(id string, at time.Time, took time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks = append(l.acks, took)
	if _, ok := l.done[id]; !ok {
		l.done[id] = at
		if _, ok := l.submitted[id]; ok {
			l.doneCount++
		}
	}
	return l.doneCount
}

// Figures computes the run's figures from what was recorded.
func (l *QueueLog) Figures() QueueFigures {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := QueueFigures{Tasks: len(l.submitted), Takes: len(l.takes), EmptyTakes: l.emptyTakes, Take: Summarize(l.takes), Ack: Summarize(l.acks)}
	if d := l.submitEnded.Sub(l.submitBegan); d > 0 {
		f.SubmitSeconds = d.Seconds()
		f.SubmitPerSec = float64(f.Tasks) / f.SubmitSeconds
	}
	for _, n := range l.takenBy {
		if n > 1 {
			f.TakenTwice++
		}
	}
	var e2e []time.Duration
	var last time.Time
	for id, at := range l.done {
		sub, ok := l.submitted[id]
		if !ok {
			continue
		}
		e2e = append(e2e, at.Sub(sub))
		if at.After(last) {
			last = at
		}
	}
	f.Done = len(e2e)
	f.Lost = f.Tasks - f.Done
	f.EndToEnd = Summarize(e2e)
	if d := last.Sub(l.submitBegan); f.Done > 0 && d > 0 {
		f.DrainSeconds = d.Seconds()
		f.DrainPerSec = float64(f.Done) / f.DrainSeconds
	}
	return f
}

// QueuePayload returns task id's payload of size bytes: the id, a space,
// and padding. Payloads differ by task, as a Redis list's acknowledgement
// (LREM by value) needs.
func QueuePayload(id string, size int) []byte {
	b := make([]byte, 0, max(size, len(id)+1))
	b = append(b, id...)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'p')
	}
	return b
}

// QueuePayloadID returns the task id a QueuePayload carries.
func QueuePayloadID(p []byte) (string, bool) {
	for i, c := range p {
		if c == ' ' {
			return string(p[:i]), i > 0
		}
	}
	return "", false
}

// Problems returns what makes a completed work-queue run a failure: a
// task taken twice, or one never done.
func (f QueueFigures) Problems() []error {
	var errs []error
	if f.TakenTwice > 0 {
		errs = append(errs, fmt.Errorf("%d tasks were taken twice", f.TakenTwice))
	}
	if f.Lost > 0 {
		errs = append(errs, fmt.Errorf("%d of %d tasks were never done", f.Lost, f.Tasks))
	}
	return errs
}
