// Package table renders the local API's answers as the CLI's tables and
// watch lines. Tables show node ids by their last ShortID characters and
// times as ages from now ("3s ago", "in 28s"); the CLI's -o json shows
// everything in full instead.
package table

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/version"
)

// ShortID is how many trailing characters of a node id a table shows.
const ShortID = 8

// Status prints an agent's status as label and value lines.
func Status(w io.Writer, s rpc.Status, now time.Time) error {
	tw := New(w)
	Row(tw, "node:", s.Node)
	Row(tw, "cluster:", s.Cluster)
	if s.Region != "" {
		Row(tw, "region:", s.Region)
	}
	Row(tw, "version:", version.Info{Version: s.Version, Commit: s.Commit, Modified: s.Modified}.String())
	Row(tw, "started:", Age(s.Started, now))
	Row(tw, "peers:", strconv.Itoa(s.Peers))
	Row(tw, "keys:", strconv.Itoa(s.Keys))
	Row(tw, "watchers:", strconv.Itoa(s.Watchers))
	Row(tw, "deltas:", fmt.Sprintf("%d in, %d out", s.DeltasIn, s.DeltasOut))
	ae := s.AntiEntropy
	Row(tw, "anti-entropy:", fmt.Sprintf("%d rounds, %d repaired, %d refused, %d failed", ae.Rounds, ae.Repaired, ae.Refused, ae.Failed))
	if len(s.Rejected) > 0 {
		var rs []string
		for _, r := range slices.Sorted(maps.Keys(s.Rejected)) {
			rs = append(rs, fmt.Sprintf("%s=%d", r, s.Rejected[r]))
		}
		Row(tw, "rejected:", strings.Join(rs, " ")+" (gossip messages)")
	}
	for i, path := range slices.Sorted(maps.Keys(s.Refused)) {
		var rs []string
		for _, r := range slices.Sorted(maps.Keys(s.Refused[path])) {
			rs = append(rs, fmt.Sprintf("%s=%d", r, s.Refused[path][r]))
		}
		label := ""
		if i == 0 {
			label = "refused deltas:"
		}
		Row(tw, label, path+": "+strings.Join(rs, " "))
	}
	if s.PeersRefused > 0 {
		Row(tw, "peers refused:", fmt.Sprintf("%d (not in allow_peers)", s.PeersRefused))
	}
	for i, l := range s.Lag {
		label := ""
		if i == 0 {
			label = "lag p50/p99:"
		}
		Row(tw, label, fmt.Sprintf("%s %d/%d ms (%d writes)", Short(l.Node), l.P50Millis, l.P99Millis, l.Samples))
	}
	for i, a := range s.Addrs {
		label := ""
		if i == 0 {
			label = "addrs:"
		}
		Row(tw, label, a)
	}
	return tw.Flush()
}

// Members prints the nodes an agent knows.
func Members(w io.Writer, ms []rpc.Member, now time.Time) error {
	tw := New(w)
	Row(tw, "NODE", "STATE", "LINK", "FOUND", "REGION", "VERSION", "LAST HEARD", "SERVICES", "LEASES", "ADDRS")
	for _, m := range ms {
		link := "-"
		switch {
		case m.Self:
			link = "self"
		case m.Connected:
			link = "connected"
		}
		Row(tw, Short(m.Node), Dash(m.State), link, Dash(m.Found), Dash(m.Region), Dash(m.Version), Age(m.LastHeard, now),
			strconv.Itoa(m.Services), strconv.Itoa(m.Leases), strings.Join(m.Addrs, ","))
	}
	return tw.Flush()
}

// Services prints service instances.
func Services(w io.Writer, rows []rpc.Service, now time.Time) error {
	tw := New(w)
	Row(tw, "SERVICE", "INSTANCE", "STATUS", "UP", "ADDR", "OWNER", "UPDATED", "EXPIRES", "TAGS")
	for _, s := range rows {
		Row(tw, s.Service, s.Instance, s.Status, YesNo(s.Up), Dash(s.Addr), Short(s.Owner),
			Age(s.Updated, now), Age(s.Expires, now), Tags(s.Tags))
	}
	return tw.Flush()
}

// Blacklist prints the ids on blacklists.
func Blacklist(w io.Writer, rows []rpc.BlacklistEntry, now time.Time) error {
	tw := New(w)
	Row(tw, "LIST", "ID", "REASON", "ADDED BY", "ADDED", "EXPIRES")
	for _, e := range rows {
		Row(tw, e.List, e.ID, Dash(e.Reason), Short(e.AddedBy), Age(e.Added, now), Age(e.Expires, now))
	}
	return tw.Flush()
}

// Lists prints every blacklist and how many ids it holds.
func Lists(w io.Writer, rows []rpc.BlacklistSummary) error {
	tw := New(w)
	Row(tw, "LIST", "ENTRIES")
	for _, l := range rows {
		Row(tw, l.List, strconv.Itoa(l.Entries))
	}
	return tw.Flush()
}

// Tasks prints tasks.
func Tasks(w io.Writer, rows []rpc.Task, now time.Time) error {
	tw := New(w)
	Row(tw, "ID", "OWNER", "STATE", "RESULT", "UPDATED BY", "UPDATED", "QUEUE", "ATTEMPT")
	for _, t := range rows {
		attempt := "-"
		if t.Queue != "" {
			attempt = fmt.Sprintf("%d/%d", t.Attempt, t.MaxAttempts)
		}
		Row(tw, t.ID, Short(t.Owner), t.State, Dash(t.Result), Short(t.UpdatedBy), Age(t.Updated, now), Dash(t.Queue), attempt)
	}
	return tw.Flush()
}

// Kernels prints kernel leases.
func Kernels(w io.Writer, rows []rpc.Kernel, now time.Time) error {
	tw := New(w)
	Row(tw, "ID", "HOLDER", "EPOCH", "STATE", "JOB", "GRANTED", "EXPIRES", "WAITING")
	for _, kn := range rows {
		expires := kn.Expires
		if kn.Released {
			expires = time.Time{} // "-": it ended when released (an older agent still sends the expiry)
		}
		Row(tw, kn.ID, Short(kn.Holder), strconv.FormatUint(kn.Epoch, 10), LeaseState(kn),
			Dash(kn.Job), Age(kn.Granted, now), Age(expires, now), strconv.Itoa(len(kn.Waiters)))
	}
	return tw.Flush()
}

// KV prints kv entries; a history also marks the current write and the
// ones that lost to a concurrent write.
func KV(w io.Writer, rows []rpc.KVEntry, now time.Time, history bool) error {
	tw := New(w)
	cols := []string{"KEY", "VERSION", "VALUE", "WRITER", "UPDATED", "EXPIRES"}
	if history {
		cols = append(cols, "")
	}
	Row(tw, cols...)
	for _, e := range rows {
		r := []string{e.Key, strconv.FormatUint(e.Version, 10), Cell(e.Value), Short(e.Writer), Age(e.Updated, now), Age(e.Expires, now)}
		if history {
			mark := ""
			switch {
			case e.Current:
				mark = "current"
			case e.Conflict:
				mark = "CONFLICT"
			}
			if e.Deleted {
				r[2] = "(deleted)"
			}
			r = append(r, mark)
		}
		Row(tw, r...)
	}
	return tw.Flush()
}

// Explained prints records with what the ordering rule made of each,
// under title (HOLDS, SUPERSEDED).
func Explained(w io.Writer, title string, rs []rpc.ExplainedRecord) error {
	tw := New(w)
	Row(tw, title, "NODE", "STAMP", "EPOCH", "STATE", "WHY")
	for _, r := range rs {
		epoch := "-"
		if r.Epoch != 0 {
			epoch = strconv.FormatUint(r.Epoch, 10)
		}
		Row(tw, r.Op, Short(r.Node), r.Stamp, epoch, Dash(r.Task), r.Why)
	}
	return tw.Flush()
}

// Event prints ev on one line: time, op, key, node, value summary. A
// stream shows each event's own time rather than an age. Keepalives are
// left out; synced and resync lines show their cursor and reason.
func Event(w io.Writer, ev rpc.Event) error {
	at := ev.Time.Local().Format("2006-01-02T15:04:05.000Z07:00")
	op := ev.Op
	switch {
	case ev.Lease != "":
		op = "lease:" + ev.Lease // granted, renewed, released, expired, lost, suspect
	case op == rpc.OpKeepalive:
		return nil
	case op == rpc.OpSynced:
		_, err := fmt.Fprintf(w, "%s %s cursor=%s\n", at, op, ev.Cursor)
		return err
	case op == rpc.OpResync:
		_, err := fmt.Fprintf(w, "%s %s reason=%s\n", at, op, ev.Reason)
		return err
	}
	line := fmt.Sprintf("%s %-7s %s %s", at, op, ev.Key, Short(ev.Node))
	if s := summary(ev); s != "" {
		line += " " + s
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// summary describes an event's value in a few words, by namespace.
func summary(ev rpc.Event) string {
	if ev.Value == nil {
		return ""
	}
	b, err := json.Marshal(ev.Value)
	if err != nil {
		return ""
	}
	ns, _, _ := strings.Cut(ev.Key, "/")
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	switch ns {
	case "svc":
		var s rpc.Service
		if json.Unmarshal(b, &s) == nil {
			add("status", s.Status)
			add("addr", s.Addr)
			add("up", YesNo(s.Up))
		}
	case "bl":
		var e rpc.BlacklistEntry
		if json.Unmarshal(b, &e) == nil {
			add("reason", e.Reason)
			if !e.Expires.IsZero() {
				add("expires", e.Expires.Local().Format(time.RFC3339))
			}
		}
	case "task":
		var t rpc.Task
		if json.Unmarshal(b, &t) == nil {
			add("owner", Short(t.Owner))
			add("state", t.State)
			add("result", t.Result)
		}
	case "kernel":
		var kn rpc.Kernel
		if json.Unmarshal(b, &kn) == nil {
			add("holder", Short(kn.Holder))
			add("epoch", strconv.FormatUint(kn.Epoch, 10))
			add("state", LeaseState(kn))
			add("job", kn.Job)
		}
	case "node":
		var m rpc.Member
		if json.Unmarshal(b, &m) == nil {
			add("region", m.Region)
			add("version", m.Version)
			add("addrs", strings.Join(m.Addrs, ","))
		}
	case "kv":
		var e rpc.KVEntry
		if json.Unmarshal(b, &e) == nil {
			add("version", strconv.FormatUint(e.Version, 10))
			add("value", Cell(e.Value))
		}
		if ev.Lost != nil {
			add("lost", Cell(ev.Lost.Value))
			add("lost_version", strconv.FormatUint(ev.Lost.Version, 10))
			add("lost_by", Short(ev.Lost.Writer))
		}
	default:
		return string(b)
	}
	return strings.Join(parts, " ")
}

// Age shows t relative to now: "3s ago", "in 28s", "-" for the zero time.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + Span(-d)
	}
	return Span(d) + " ago"
}

// Span shows d in its largest whole unit: 45s, 12m, 5h, 3d.
func Span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// LeaseState names a lease's state: free, live, released or expired.
func LeaseState(kn rpc.Kernel) string {
	switch {
	case kn.Holder == "":
		return "free"
	case kn.Live:
		return "live"
	case kn.Released:
		return "released"
	}
	return "expired"
}

// Short returns the last ShortID characters of a node id ("-" for none).
func Short(id string) string {
	if id == "" {
		return "-"
	}
	if len(id) > ShortID {
		return id[len(id)-ShortID:]
	}
	return id
}

// Dash returns s, or "-" for the empty string.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// YesNo shows b as yes or no.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Tags shows tags as key=value,... in key order ("-" for none).
func Tags(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// Cell fits a value into a table cell: one line (newlines and tabs
// escaped), at most 60 characters.
func Cell(v string) string {
	q := strconv.Quote(v)
	q = q[1 : len(q)-1] // escapes newlines and tabs, no quotes
	if utf8.RuneCountInString(q) > 60 {
		q = string([]rune(q)[:57]) + "..."
	}
	return Dash(q)
}

// New returns a table writer: columns two spaces apart.
func New(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// Row writes one row of cells.
func Row(tw *tabwriter.Writer, cols ...string) {
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
}
