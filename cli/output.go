package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/version"
)

// Tables show node ids by their last shortID characters and times as ages
// ("3s ago", "in 28s"); -o json shows everything in full.
const shortID = 8

func cmdStatus(ctx context.Context, k *call) error {
	s, err := k.client.Status(ctx)
	if err != nil {
		return err
	}
	if k.json {
		return k.printJSON(s)
	}
	tw := newTable(k.out)
	row(tw, "node:", s.Node)
	row(tw, "cluster:", s.Cluster)
	if s.Region != "" {
		row(tw, "region:", s.Region)
	}
	row(tw, "version:", version.Info{Version: s.Version, Commit: s.Commit, Modified: s.Modified}.String())
	row(tw, "started:", k.age(s.Started))
	row(tw, "peers:", strconv.Itoa(s.Peers))
	row(tw, "keys:", strconv.Itoa(s.Keys))
	row(tw, "watchers:", strconv.Itoa(s.Watchers))
	row(tw, "deltas:", fmt.Sprintf("%d in, %d out", s.DeltasIn, s.DeltasOut))
	ae := s.AntiEntropy
	row(tw, "anti-entropy:", fmt.Sprintf("%d rounds, %d repaired, %d refused, %d failed", ae.Rounds, ae.Repaired, ae.Refused, ae.Failed))
	if len(s.Rejected) > 0 {
		var rs []string
		for _, r := range slices.Sorted(maps.Keys(s.Rejected)) {
			rs = append(rs, fmt.Sprintf("%s=%d", r, s.Rejected[r]))
		}
		row(tw, "rejected:", strings.Join(rs, " ")+" (gossip messages)")
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
		row(tw, label, path+": "+strings.Join(rs, " "))
	}
	if s.PeersRefused > 0 {
		row(tw, "peers refused:", fmt.Sprintf("%d (not in allow_peers)", s.PeersRefused))
	}
	for i, l := range s.Lag {
		label := ""
		if i == 0 {
			label = "lag p50/p99:"
		}
		row(tw, label, fmt.Sprintf("%s %d/%d ms (%d writes)", short(l.Node), l.P50Millis, l.P99Millis, l.Samples))
	}
	for i, a := range s.Addrs {
		label := ""
		if i == 0 {
			label = "addrs:"
		}
		row(tw, label, a)
	}
	return tw.Flush()
}

func cmdMembers(ctx context.Context, k *call) error {
	ms, err := k.client.Members(ctx)
	if err != nil {
		return err
	}
	if k.json {
		return k.printJSON(nonNil(ms))
	}
	tw := newTable(k.out)
	row(tw, "NODE", "STATE", "LINK", "FOUND", "REGION", "VERSION", "LAST HEARD", "SERVICES", "LEASES", "ADDRS")
	for _, m := range ms {
		link := "-"
		switch {
		case m.Self:
			link = "self"
		case m.Connected:
			link = "connected"
		}
		row(tw, short(m.Node), dash(m.State), link, dash(m.Found), dash(m.Region), dash(m.Version), k.age(m.LastHeard),
			strconv.Itoa(m.Services), strconv.Itoa(m.Leases), strings.Join(m.Addrs, ","))
	}
	return tw.Flush()
}

// services prints rows as a table, or v as JSON.
func (k *call) services(rows []rpc.Service, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	tw := newTable(k.out)
	row(tw, "SERVICE", "INSTANCE", "STATUS", "UP", "ADDR", "OWNER", "UPDATED", "EXPIRES", "TAGS")
	for _, s := range rows {
		row(tw, s.Service, s.Instance, s.Status, yesNo(s.Up), dash(s.Addr), short(s.Owner),
			k.age(s.Updated), k.age(s.Expires), tags(s.Tags))
	}
	return tw.Flush()
}

// entries prints rows as a table, or v as JSON.
func (k *call) entries(rows []rpc.BlacklistEntry, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	tw := newTable(k.out)
	row(tw, "LIST", "ID", "REASON", "ADDED BY", "ADDED", "EXPIRES")
	for _, e := range rows {
		row(tw, e.List, e.ID, dash(e.Reason), short(e.AddedBy), k.age(e.Added), k.age(e.Expires))
	}
	return tw.Flush()
}

// tasks prints rows as a table, or v as JSON.
func (k *call) tasks(rows []rpc.Task, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	tw := newTable(k.out)
	row(tw, "ID", "OWNER", "STATE", "RESULT", "UPDATED BY", "UPDATED", "QUEUE", "ATTEMPT")
	for _, t := range rows {
		attempt := "-"
		if t.Queue != "" {
			attempt = fmt.Sprintf("%d/%d", t.Attempt, t.MaxAttempts)
		}
		row(tw, t.ID, short(t.Owner), t.State, dash(t.Result), short(t.UpdatedBy), k.age(t.Updated), dash(t.Queue), attempt)
	}
	return tw.Flush()
}

// kernels prints rows as a table, or v as JSON.
func (k *call) kernels(rows []rpc.Kernel, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	tw := newTable(k.out)
	row(tw, "ID", "HOLDER", "EPOCH", "STATE", "JOB", "GRANTED", "EXPIRES", "WAITING")
	for _, kn := range rows {
		expires := kn.Expires
		if kn.Released {
			expires = time.Time{} // "-": it ended when released (an older agent still sends the expiry)
		}
		row(tw, kn.ID, short(kn.Holder), strconv.FormatUint(kn.Epoch, 10), leaseState(kn),
			dash(kn.Job), k.age(kn.Granted), k.age(expires), strconv.Itoa(len(kn.Waiters)))
	}
	return tw.Flush()
}

// printEvent prints ev on one line: time, op, key, node, value summary. A
// stream shows each event's own time rather than an age. Keepalives are
// left out; synced and resync lines show their cursor and reason.
func (k *call) printEvent(ev rpc.Event) error {
	at := ev.Time.Local().Format("2006-01-02T15:04:05.000Z07:00")
	op := ev.Op
	switch {
	case ev.Lease != "":
		op = "lease:" + ev.Lease // granted, renewed, released, expired, lost, suspect
	case op == rpc.OpKeepalive:
		return nil
	case op == rpc.OpSynced:
		_, err := fmt.Fprintf(k.out, "%s %s cursor=%s\n", at, op, ev.Cursor)
		return err
	case op == rpc.OpResync:
		_, err := fmt.Fprintf(k.out, "%s %s reason=%s\n", at, op, ev.Reason)
		return err
	}
	line := fmt.Sprintf("%s %-7s %s %s", at, op, ev.Key, short(ev.Node))
	if s := summary(ev); s != "" {
		line += " " + s
	}
	_, err := fmt.Fprintln(k.out, line)
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
			add("up", yesNo(s.Up))
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
			add("owner", short(t.Owner))
			add("state", t.State)
			add("result", t.Result)
		}
	case "kernel":
		var kn rpc.Kernel
		if json.Unmarshal(b, &kn) == nil {
			add("holder", short(kn.Holder))
			add("epoch", strconv.FormatUint(kn.Epoch, 10))
			add("state", leaseState(kn))
			add("job", kn.Job)
		}
	case "node":
		var m rpc.Member
		if json.Unmarshal(b, &m) == nil {
			add("region", m.Region)
			add("version", m.Version)
			add("addrs", strings.Join(m.Addrs, ","))
		}
	default:
		return string(b)
	}
	return strings.Join(parts, " ")
}

func (k *call) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = k.out.Write(append(b, '\n'))
	return err
}

func (k *call) printNDJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = k.out.Write(append(b, '\n'))
	return err
}

// age shows t relative to now, read once per command after the agent has
// answered: "3s ago", "in 28s", "-" for the zero time.
func (k *call) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if k.now.IsZero() {
		k.now = time.Now()
	}
	d := k.now.Sub(t)
	if d < 0 {
		return "in " + span(-d)
	}
	return span(d) + " ago"
}

// span shows d in its largest whole unit: 45s, 12m, 5h, 3d.
func span(d time.Duration) string {
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

func leaseState(kn rpc.Kernel) string {
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

// short returns the last shortID characters of a node id.
func short(id string) string {
	if id == "" {
		return "-"
	}
	if len(id) > shortID {
		return id[len(id)-shortID:]
	}
	return id
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func tags(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func row(tw *tabwriter.Writer, cols ...string) {
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
}

// blacklists prints rows (every list and its number of ids) as a table,
// or v as JSON.
func (k *call) blacklists(rows []rpc.BlacklistSummary, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	tw := newTable(k.out)
	row(tw, "LIST", "ENTRIES")
	for _, l := range rows {
		row(tw, l.List, strconv.Itoa(l.Entries))
	}
	return tw.Flush()
}
