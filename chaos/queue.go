package chaos

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Check names of the work queue's checks.
const (
	// CheckQueueLost: a task whose submission was acknowledged had not
	// ended (done or failed) on every agent after the final heal and drain.
	CheckQueueLost = "queue-lost"
	// CheckQueueTwice: a task was taken while an earlier attempt of it
	// still ran, or after one had ended done, with no fault in force.
	CheckQueueTwice = "queue-taken-twice"
)

// Take is one take of a work queue's task by a chaos worker: when the take
// returned (At), when its worker's done call returned (End; the zero time
// if it never made one), and whether that call was acknowledged.
type Take struct {
	Task    string    `json:"task"`
	Agent   int       `json:"agent"`
	Attempt int       `json:"attempt"`
	Epoch   uint64    `json:"epoch"`
	At      time.Time `json:"at"`
	End     time.Time `json:"end"`
	Done    bool      `json:"done"`
}

// Interval is a span of time, such as a fault from its injection until
// the agents converged after its heal.
type Interval struct {
	From, To time.Time
}

// QueueFindings sum up a run of the work queue.
type QueueFindings struct {
	Submitted int `json:"submitted"` // acknowledged submissions
	Unknown   int `json:"unknown"`   // submissions whose outcome is unknown (not checked)
	Done      int `json:"done"`
	Failed    int `json:"failed"` // dead letters among them
	Lost      int `json:"lost"`
	Takes     int `json:"takes"`
	// Retaken counts takes of a task whose earlier attempt had ended
	// without done: its worker was killed, paused or cut off, or its
	// visibility timeout passed (at-least-once, by design); RetakeAfter
	// are their delays from the earlier take.
	Retaken     int             `json:"retaken"`
	RetakeAfter []time.Duration `json:"retake_after_ns"`
	// Twice counts takes of a task while an earlier attempt still ran or
	// after one had ended done; TwiceCalm those with no fault in force at
	// either take (must be 0).
	Twice     int `json:"twice"`
	TwiceCalm int `json:"twice_calm"`
}

// Queue checks a work queue's history: submitted are the acknowledged
// submissions, ended maps every task that ended on every agent to its
// state, takes are the workers' takes, faults the spans during which a
// fault was in force.
func Queue(submitted []string, ended map[string]string, takes []Take, faults []Interval) (QueueFindings, []Violation) {
	f := QueueFindings{Submitted: len(submitted), Takes: len(takes)}
	var vs []Violation
	for _, id := range submitted {
		switch ended[id] {
		case "done":
			f.Done++
		case "failed":
			f.Failed++
		default:
			f.Lost++
			vs = append(vs, Violation{Check: CheckQueueLost, Detail: fmt.Sprintf("task %s was submitted but has not ended everywhere (%q)", id, ended[id])})
		}
	}
	inFault := func(t time.Time) bool {
		return slices.ContainsFunc(faults, func(iv Interval) bool { return !t.Before(iv.From) && !t.After(iv.To) })
	}
	byTask := map[string][]Take{}
	for _, tk := range takes {
		byTask[tk.Task] = append(byTask[tk.Task], tk)
	}
	for _, id := range slices.Sorted(maps.Keys(byTask)) {
		tks := byTask[id]
		slices.SortFunc(tks, func(a, b Take) int { return a.At.Compare(b.At) })
		for j := 1; j < len(tks); j++ {
			later := tks[j]
			twice, calm := false, !inFault(later.At)
			for _, earlier := range tks[:j] {
				// It had ended done, or its worker was still at it.
				if earlier.Done || !earlier.End.IsZero() && later.At.Before(earlier.End) {
					twice = true
					calm = calm && !inFault(earlier.At) && !inFault(earlier.End)
				}
			}
			if !twice {
				f.Retaken++
				f.RetakeAfter = append(f.RetakeAfter, later.At.Sub(tks[j-1].At))
				continue
			}
			f.Twice++
			if calm {
				f.TwiceCalm++
				vs = append(vs, Violation{Check: CheckQueueTwice, Detail: fmt.Sprintf("task %s taken by agent %d (attempt %d, epoch %d) at %s while no fault was in force, after an attempt that ran or ended done: %+v",
					id, later.Agent, later.Attempt, later.Epoch, later.At.Format(time.StampMilli), tks[:j])})
			}
		}
	}
	return f, vs
}
