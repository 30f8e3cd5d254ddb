package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/rpc"
)

// Check names, as violations carry them.
const (
	CheckDiverged    = "diverged"
	CheckLost        = "lost-write"
	CheckResurrected = "resurrected"
	CheckPhantom     = "phantom"
	CheckEpoch       = "epoch-regressed"
	CheckHolders     = "holders-disagree"
	CheckDecode      = "undecodable"
)

// Diff compares the agents' records, leaving out keys for which skip is
// true (nil: none). It returns "" when every agent holds the same records,
// else what differs first.
func Diff(states [][]rpc.Record, skip func(key string) bool) string {
	norm := make([][]rpc.Record, len(states))
	for i, s := range states {
		for _, r := range s {
			if skip == nil || !skip(r.Key) {
				norm[i] = append(norm[i], r)
			}
		}
		slices.SortFunc(norm[i], compareRecord)
	}
	for i := 1; i < len(norm); i++ {
		a, b := norm[0], norm[i]
		for j := 0; j < max(len(a), len(b)); j++ {
			switch {
			case j >= len(a):
				return fmt.Sprintf("agent %d has %s, agent 0 does not", i, describe(b[j]))
			case j >= len(b):
				return fmt.Sprintf("agent 0 has %s, agent %d does not", describe(a[j]), i)
			case !sameRecord(a[j], b[j]):
				return fmt.Sprintf("agent 0 has %s where agent %d has %s", describe(a[j]), i, describe(b[j]))
			}
		}
	}
	return ""
}

func compareRecord(a, b rpc.Record) int {
	return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.HLC, b.HLC), strings.Compare(a.Node, b.Node), strings.Compare(a.Op, b.Op))
}

func sameRecord(a, b rpc.Record) bool {
	return a.Key == b.Key && a.Op == b.Op && a.Node == b.Node && a.HLC == b.HLC && a.Epoch == b.Epoch &&
		a.ExpiryMillis == b.ExpiryMillis && a.Task == b.Task && string(a.Value) == string(b.Value)
}

func describe(r rpc.Record) string {
	s := fmt.Sprintf("%s %s by %s at %s", r.Key, r.Op, ShortID(r.Node), r.Stamp)
	if r.Epoch != 0 {
		s += fmt.Sprintf(" epoch %d", r.Epoch)
	}
	if r.Task != "" {
		s += " " + r.Task
	}
	return s
}

// ShortID is a node id's last 8 characters, as reports show it.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// entries rebuilds the CRDT entries from a final state's records.
func entries(final []rpc.Record) (map[string]crdt.Entry, []Violation) {
	out := map[string]crdt.Entry{}
	var vs []Violation
	for _, r := range final {
		d, err := Delta(r)
		if err != nil {
			vs = append(vs, Violation{CheckDecode, err.Error()})
			continue
		}
		out[r.Key], _ = out[r.Key].Apply(d)
	}
	return out, vs
}

// Lost reports acknowledged writes that the final state does not hold:
// neither present nor superseded by a later write (by the namespace's own
// order: stamp, remove-wins, task rank, lease records). A lost delete or
// remove whose key holds an earlier write in the end is reported as a
// resurrection.
func Lost(ops []Op, final []rpc.Record) []Violation {
	state, vs := entries(final)
	for _, op := range ops {
		if op.Outcome != OK || op.Acked == nil {
			continue
		}
		d, err := Delta(*op.Acked)
		if err != nil {
			vs = append(vs, Violation{CheckDecode, fmt.Sprintf("op %d: %v", op.ID, err)})
			continue
		}
		e := state[d.Key]
		if _, changed := e.Apply(d); !changed {
			continue
		}
		check := CheckLost
		if d.Op == crdt.OpDelete && len(e.Deltas) > 0 && e.Winner().Op == crdt.OpPut {
			check = CheckResurrected
		}
		now := "nothing"
		if len(e.Deltas) > 0 {
			now = describe(recordOf(e.Winner()))
		}
		vs = append(vs, Violation{check, fmt.Sprintf("op %d (%s on agent %d, acked %s) wrote %s; the final state holds %s",
			op.ID, op.Kind, op.Agent, op.End.Format("15:04:05.000"), describe(*op.Acked), now)})
	}
	return vs
}

func recordOf(d crdt.Delta) rpc.Record {
	return rpc.Record{Key: d.Key, Op: d.Op.String(), Node: d.Stamp.Node, HLC: uint64(d.Stamp.HLC), Stamp: d.Stamp.HLC.String(), Epoch: d.Epoch}
}

// Phantoms reports final svc and bl entries written by a node that never
// issued an operation on that key: state nobody asked for. nodes maps a
// node id to its agent index.
func Phantoms(ops []Op, final []rpc.Record, nodes map[string]int) []Violation {
	type keyAgent struct {
		key   string
		agent int
	}
	issued := map[keyAgent]bool{}
	for _, op := range ops {
		issued[keyAgent{op.Key, op.Agent}] = true
	}
	var vs []Violation
	for _, r := range final {
		ns := crdt.NamespaceOf(r.Key)
		if ns != crdt.NSService && ns != crdt.NSBlacklist {
			continue
		}
		agent, ok := nodes[r.Node]
		if !ok || !issued[keyAgent{r.Key, agent}] {
			vs = append(vs, Violation{CheckPhantom, fmt.Sprintf("%s, but no operation on that key was issued there", describe(r))})
		}
	}
	return vs
}

// EpochRegressions reports every time an agent's view of a kernel's epoch
// went down between two of its samples (restarts included: leases are
// persisted).
func EpochRegressions(samples []Sample) []Violation {
	type agentKernel struct {
		agent  int
		kernel string
	}
	last := map[agentKernel]Sample{}
	lastEpoch := map[agentKernel]uint64{}
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b Sample) int { return a.At.Compare(b.At) })
	var vs []Violation
	for _, s := range sorted {
		for _, k := range s.Kernels {
			ak := agentKernel{s.Agent, k.ID}
			if prev, ok := lastEpoch[ak]; ok && k.Epoch < prev {
				vs = append(vs, Violation{CheckEpoch, fmt.Sprintf("agent %d saw kernel %s at epoch %d (round %d), then %d (round %d)",
					s.Agent, k.ID, prev, last[ak].Round, k.Epoch, s.Round)})
			}
			lastEpoch[ak], last[ak] = k.Epoch, s
		}
	}
	return vs
}

// Window is a stretch of sampling rounds in which two or more agents each
// believed they held the same kernel.
type Window struct {
	Kernel   string        `json:"kernel"`
	Holders  []string      `json:"holders"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
}

// DoubleGrants finds the windows in which more than one agent believed it
// held a kernel. ids maps an agent index to its node id; period is the
// sampling period, the resolution of every window.
func DoubleGrants(samples []Sample, ids []string, period time.Duration) []Window {
	type round struct {
		at      time.Time
		holders map[string]map[string]bool // kernel -> self-believed holders
	}
	rounds := map[int]*round{}
	for _, s := range samples {
		r := rounds[s.Round]
		if r == nil {
			r = &round{at: s.At, holders: map[string]map[string]bool{}}
			rounds[s.Round] = r
		}
		r.at = minTime(r.at, s.At)
		for _, k := range s.Kernels {
			if s.Agent < len(ids) && k.Live && k.Holder == ids[s.Agent] {
				if r.holders[k.ID] == nil {
					r.holders[k.ID] = map[string]bool{}
				}
				r.holders[k.ID][k.Holder] = true
			}
		}
	}
	var out []Window
	open := map[string]int{} // kernel -> index in out of its latest window
	lastRound := map[string]int{}
	for _, n := range slices.Sorted(maps.Keys(rounds)) {
		r := rounds[n]
		for _, kernel := range slices.Sorted(maps.Keys(r.holders)) {
			hs := r.holders[kernel]
			if len(hs) < 2 {
				continue
			}
			i, ok := open[kernel]
			if !ok || lastRound[kernel] != n-1 {
				out = append(out, Window{Kernel: kernel, Start: r.at})
				i = len(out) - 1
				open[kernel] = i
			}
			lastRound[kernel] = n
			out[i].Duration = r.at.Sub(out[i].Start) + period
			for h := range hs {
				if !slices.Contains(out[i].Holders, h) {
					out[i].Holders = append(out[i].Holders, h)
				}
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].Holders)
	}
	return out
}

// between reports whether t lies between the clock readings of two views,
// their slack included.
func between(t time.Time, a, b View) bool {
	lo, hi := a.Now.Add(-a.Slack), a.Now.Add(a.Slack)
	lo, hi = minTime(lo, b.Now.Add(-b.Slack)), maxTime(hi, b.Now.Add(b.Slack))
	return !t.Before(lo) && !t.After(hi)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// View is one agent's KernelList, read at Now by that agent's clock (the
// reader's time of the read plus the agent's clock offset), within Slack
// (how long the read took).
type View struct {
	Now     time.Time
	Slack   time.Duration
	Kernels []rpc.Kernel
}

// HoldersAgree reports kernels that the agents' final views disagree on:
// a different holder or epoch, or a different liveness that their clocks
// do not explain. Liveness is judged by each agent's own clock against
// the same expiry: agents whose clocks are apart legitimately disagree
// while the expiry lies between their clocks' readings (a lease renewed
// every ttl/3 on a holder whose clock is 3 s behind one of them, with a
// ttl of 3 s, is expired there most of the time); anywhere else, they
// must agree.
func HoldersAgree(views []View) []Violation {
	if len(views) == 0 {
		return nil
	}
	type verdict struct {
		holder string
		epoch  uint64
		live   bool
	}
	var vs []Violation
	ref := map[string]verdict{}
	expires := map[string]time.Time{}
	for _, k := range views[0].Kernels {
		ref[k.ID] = verdict{k.Holder, k.Epoch, k.Live}
		expires[k.ID] = k.Expires
	}
	for i, v := range views[1:] {
		seen := map[string]bool{}
		for _, k := range v.Kernels {
			seen[k.ID] = true
			got, want := verdict{k.Holder, k.Epoch, k.Live}, ref[k.ID]
			if got.holder == want.holder && got.epoch == want.epoch && got.live != want.live && !k.Released &&
				k.Expires.Equal(expires[k.ID]) && between(k.Expires, views[0], v) {
				continue // their clocks read either side of the expiry
			}
			if got != want {
				vs = append(vs, Violation{CheckHolders, fmt.Sprintf("kernel %s: agent 0 sees holder %s epoch %d live %v, agent %d sees holder %s epoch %d live %v",
					k.ID, ShortID(want.holder), want.epoch, want.live, i+1, ShortID(got.holder), got.epoch, got.live)})
			}
		}
		for id := range ref {
			if !seen[id] {
				vs = append(vs, Violation{CheckHolders, fmt.Sprintf("kernel %s: agent %d does not know it", id, i+1)})
			}
		}
	}
	return vs
}
