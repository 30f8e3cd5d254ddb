package rpc

import "time"

// Status describes the local agent.
type Status struct {
	Node    string `json:"node"`
	Cluster string `json:"cluster"`
	Region  string `json:"region,omitempty"`
	Version string `json:"version"`
	// Commit is the commit the agent was built from, when known, and
	// Modified says its work tree had uncommitted changes.
	Commit   string   `json:"commit,omitempty"`
	Modified bool     `json:"modified,omitempty"`
	Addrs    []string `json:"addrs"` // full multiaddrs including /p2p/<node>, usable with --join
	Peers    int      `json:"peers"` // connected libp2p peers
	Keys     int      `json:"keys"`
	// Watchers is the number of active watch streams.
	Watchers int `json:"watchers"`
	// DeltasIn and DeltasOut count deltas applied from peers and published.
	DeltasIn  uint64 `json:"deltas_in"`
	DeltasOut uint64 `json:"deltas_out"`
	// Unflushed is the number of changed keys not yet written to disk
	// (writes are persisted behind, in batches, within ~50 ms).
	Unflushed int `json:"unflushed"`
	// AntiEntropy counts state reconciliation with peers.
	AntiEntropy AntiEntropyStats `json:"anti_entropy"`
	// Rejected counts gossip messages refused by the validator, by reason.
	Rejected map[string]uint64 `json:"rejected,omitempty"`
	// Refused counts deltas refused by the agent's ingest path, by the path
	// they came by (local, gossip, anti-entropy, restore) and reason; only
	// non-zero counts.
	Refused map[string]map[string]uint64 `json:"refused,omitempty"`
	// PeersRefused counts connections and dials refused because the peer
	// is not in allow_peers.
	PeersRefused uint64    `json:"peers_refused"`
	Started      time.Time `json:"started"`
	// Lag is the convergence probe: per peer, the lag of its recent
	// writes received by gossip (this agent's receive time minus the
	// write's stamp, clock skew included), by node id.
	Lag []PeerLag `json:"lag,omitempty"`
}

// PeerLag is the propagation lag of one peer's recent writes (up to
// the last 256) as this agent received them.
type PeerLag struct {
	Node      string `json:"node"`
	Samples   int    `json:"samples"`
	P50Millis int64  `json:"p50_ms"`
	P99Millis int64  `json:"p99_ms"`
}

// AntiEntropyStats counts anti-entropy exchanges.
type AntiEntropyStats struct {
	Rounds   uint64 `json:"rounds"`   // exchanges completed
	Repaired uint64 `json:"repaired"` // deltas that changed this agent's state
	Refused  uint64 `json:"refused"`  // deltas refused by the write policy or skew bound
	Failed   uint64 `json:"failed"`   // exchanges that failed
}

// Member is one node as this agent sees it.
type Member struct {
	Node    string   `json:"node"`
	Addrs   []string `json:"addrs,omitempty"`
	Region  string   `json:"region,omitempty"`
	Version string   `json:"version,omitempty"`
	Self    bool     `json:"self,omitempty"`
	// State is the failure detector's verdict: alive, suspect or dead.
	State     string `json:"state"`
	Connected bool   `json:"connected"`
	// LastHeard is when this agent last received anything from the node.
	LastHeard time.Time `json:"last_heard,omitzero"`
	Services  int       `json:"services"`
	Leases    int       `json:"leases"`
	// Found says how this agent first found the node: join, dns, mdns,
	// gossip (heard of from other nodes) or inbound (it connected to us
	// first); empty for this agent itself.
	Found string `json:"found,omitempty"`
}

// ServiceSet is the body of a svc set request.
type ServiceSet struct {
	Addr   string            `json:"addr,omitempty"`
	Status string            `json:"status"`
	Tags   map[string]string `json:"tags,omitempty"`
	// TTLMillis makes the entry expire unless set again; 0 means never.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
}

// Origin says who wrote a value, when, and whether that node is reachable
// now: how stale a read may be. Reads carry it in JSON; tables show the age.
type Origin struct {
	// Origin is the node that wrote the value (a kernel's holder).
	Origin string `json:"origin"`
	// Stamp is the write's HLC as "<wallms>.<logical>" (a kernel's last
	// claim or renewal that counted).
	Stamp string `json:"stamp"`
	// AgeMillis is this agent's clock minus the stamp's wall time (0 if
	// the stamp is ahead, as a skewed clock can make it).
	AgeMillis int64 `json:"age_ms"`
	// OriginState is the writer's membership state as this agent sees it
	// now: alive, suspect, dead, or unknown (never heard, or itself).
	OriginState string `json:"origin_state"`
}

// Service is one service instance.
type Service struct {
	Service  string            `json:"service"`
	Instance string            `json:"instance"`
	Addr     string            `json:"addr,omitempty"`
	Status   string            `json:"status"`
	Tags     map[string]string `json:"tags,omitempty"`
	Owner    string            `json:"owner"`
	Updated  time.Time         `json:"updated"`
	Expires  time.Time         `json:"expires,omitzero"`
	// Up is true when Status is "up", the entry has not expired and its
	// owner is not dead.
	Up bool `json:"up"`
	// OwnerState is the owner's membership state (alive, suspect, dead).
	// While the owner is dead, Status reads "down" and Reported keeps the
	// status the owner last wrote.
	OwnerState string `json:"owner_state"`
	Reported   string `json:"reported,omitempty"`
	Origin
}

// KVEntry is a kv key's value as this agent holds it or, in a history, one
// write to the key.
type KVEntry struct {
	// Key is the path, such as /config/app/env/name.
	Key   string `json:"key"`
	Value string `json:"value"`
	// Version is one more than the version its writer held when it wrote
	// (1 for a new key).
	Version uint64 `json:"version"`
	// Writer is the node that wrote it; Stamp its HLC as
	// "<wallms>.<logical>", and Updated the stamp's wall time.
	Writer  string    `json:"writer"`
	Stamp   string    `json:"stamp"`
	Updated time.Time `json:"updated"`
	Expires time.Time `json:"expires,omitzero"`
	// Deleted marks a delete (in a history, and in a delete's answer).
	Deleted bool `json:"deleted,omitempty"`
	// Current marks, in a history, the write that holds now.
	Current bool `json:"current,omitempty"`
	// Conflict marks, in a history, a write that lost to a concurrent one
	// whose writer never saw it.
	Conflict bool `json:"conflict,omitempty"`
}

// KVPut is the body of a kv put request.
type KVPut struct {
	// Value is the value, UTF-8 text of at most max_value_bytes (less the
	// few bytes of its encoding).
	Value string `json:"value"`
	// TTLMillis deletes the key after this long; 0 means never.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
	// IfVersion, when set, makes the write happen only if this agent's
	// version of the key is IfVersion (0: the key must not exist).
	IfVersion *uint64 `json:"if_version,omitempty"`
}

// BlacklistAdd is the body of a bl add request.
type BlacklistAdd struct {
	Reason string `json:"reason,omitempty"`
	// TTLMillis removes the id after this long; 0 means never.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
}

// BlacklistEntry is one id on a list.
type BlacklistEntry struct {
	List    string    `json:"list"`
	ID      string    `json:"id"`
	Reason  string    `json:"reason,omitempty"`
	AddedBy string    `json:"added_by"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"expires,omitzero"`
	Origin
}

// BlacklistSummary is one blacklist and how many ids are on it now
// (expired and removed ids not counted).
type BlacklistSummary struct {
	List    string `json:"list"`
	Entries int    `json:"entries"`
}

// TaskAssign is the body of a task assign request.
type TaskAssign struct {
	// Node is the owner; "" means the local agent.
	Node string `json:"node,omitempty"`
}

// TaskUpdate is the body of a task state change by its owner.
type TaskUpdate struct {
	State  string `json:"state"`
	Result string `json:"result,omitempty"`
	// Session is the worker's session, for a task it took on one: its
	// lease is released with the task's end.
	Session string `json:"session,omitempty"`
}

// TaskSubmit is the body of a submission to a work queue.
type TaskSubmit struct {
	ID       string `json:"id"`
	Payload  []byte `json:"payload,omitempty"` // base64 in JSON
	Priority int    `json:"priority,omitempty"`
	// MaxAttempts bounds the takes (0: 3); past it the task fails as a
	// dead letter.
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// TaskTake is the body of a take from a work queue.
type TaskTake struct {
	// VisibilityMillis is how long a one-shot take holds the task unless
	// touched (0: 5 minutes); a session's keepalives must come within it.
	VisibilityMillis int64 `json:"visibility_ms,omitempty"`
	// WaitMillis is how long to wait for a task to take (0: not at all).
	WaitMillis int64 `json:"wait_ms,omitempty"`
}

// TakeResult is the answer to a one-shot take.
type TakeResult struct {
	Taken bool  `json:"taken"`
	Task  *Task `json:"task,omitempty"`
}

// TaskTouch is the body of a task touch: the extension of a taken task's
// lease by its worker.
type TaskTouch struct {
	VisibilityMillis int64  `json:"visibility_ms,omitempty"` // 0: the take's default
	Session          string `json:"session,omitempty"`       // a session's keepalive
}

// TaskFilter selects tasks to list; empty fields select all.
type TaskFilter struct {
	State string `json:"state,omitempty"`
	Queue string `json:"queue,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// Task is one task and where it runs.
type Task struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	// State is the task's state as this agent sees it: a queue's task
	// whose worker is gone shows queued again.
	State     string    `json:"state"`
	Result    string    `json:"result,omitempty"`
	UpdatedBy string    `json:"updated_by"`
	Updated   time.Time `json:"updated"`
	// Queue, Payload, Priority, Attempt, MaxAttempts and Epoch are a
	// queue's task's: Epoch is the fencing epoch of the current attempt.
	Queue       string `json:"queue,omitempty"`
	Payload     []byte `json:"payload,omitempty"`
	Priority    int    `json:"priority,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
	Epoch       uint64 `json:"epoch,omitempty"`
	Origin
}

// Waiter is a claim queued for a kernel.
type Waiter struct {
	Node    string    `json:"node"`
	Session string    `json:"session"`
	Since   time.Time `json:"since"`
	Job     string    `json:"job,omitempty"`
}

// KernelClaim is the body of a kernel claim or session request.
type KernelClaim struct {
	TTLMillis int64  `json:"ttl_ms,omitempty"` // 0: the agent's default lease TTL
	Job       string `json:"job,omitempty"`
	// Keep makes the agent renew a one-shot claim's lease every ttl/3
	// until it is released. Without it the lease runs out after ttl_ms
	// unless renewed (kernel renew): a program that dies does not leave
	// the kernel held. Sessions ignore it: they hold the lease while the
	// client keeps them alive.
	Keep bool `json:"keep,omitempty"`
	// WaitMillis makes the claim wait up to this long while another
	// claimant holds the kernel, trying again when the kernel's records
	// change or its lease can have run out. 0 does not wait.
	WaitMillis int64 `json:"wait_ms,omitempty"`
	// Once makes a session a run-once job's: the slot (e.g.
	// nightly-2026-12-05) whose job runs once across the cluster. Once
	// granted, the agent fetches the slot's record (task
	// once:<kernel>:<slot>) from its peers; if a run completed, the
	// granted event carries it in Once and the job must not run again.
	// Otherwise the agent marks the slot running on this node, and the
	// client records the outcome with TaskUpdate (done or failed).
	Once string `json:"once,omitempty"`
}

// KernelRenew is the body of a kernel renew request.
type KernelRenew struct {
	TTLMillis int64 `json:"ttl_ms,omitempty"` // 0: the agent's default lease TTL
	// Session renews the lease of this session (a session's keepalive);
	// empty renews a one-shot claim's lease.
	Session string `json:"session,omitempty"`
}

// KernelRelease is the body of a kernel release request.
type KernelRelease struct {
	// Session releases the lease of this session; empty releases a
	// one-shot claim's lease.
	Session string `json:"session,omitempty"`
	// Force frees the kernel whoever holds it (an operator's release of a
	// dead or stuck holder): the agent claims the next epoch at once and
	// releases it, so the old holder's agent reports "lost". It is
	// recorded as that claim's job: who forced it, when, which epoch.
	Force  bool   `json:"force,omitempty"`
	Reason string `json:"reason,omitempty"` // recorded with a forced release
}

// Session events, the Event field of a SessionEvent.
const (
	SessionWaiting  = "waiting"  // the kernel is held: the session waits for it
	SessionGranted  = "granted"  // the session holds the lease; Session names it
	SessionDenied   = "denied"   // not granted (the wait ran out, or no wait): the stream ends
	SessionRenewed  = "renewed"  // a keepalive renewed the lease
	SessionSuspect  = "suspect"  // the agent is cut off from most of the cluster: stop using the kernel
	SessionLost     = "lost"     // another claim won (a partition healed, a forced release): the stream ends
	SessionExpired  = "expired"  // the lease ran out without a keepalive: the stream ends
	SessionReleased = "released" // the lease was released: the stream ends
	// SessionStopping: the agent is stopping. Stop using the kernel and
	// release the lease; the agent releases it itself shortly after.
	SessionStopping = "stopping"
	// SessionCancelRequested: (a task session) a cancel of the task was
	// requested: stop it, and end it as cancelled.
	SessionCancelRequested = "cancel-requested"
)

// SessionEvent is one line of a kernel session stream.
type SessionEvent struct {
	Event string `json:"event"`
	// Session is the session's id, for its keepalives (KernelRenew) and
	// release.
	Session string `json:"session,omitempty"`
	// TTLMillis is the lease's length: a keepalive sent at t extends it
	// to at least t+ttl on the agent's clock.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
	// MarginMillis is the agent's lease_margin: how long before the
	// lease's end, on its own monotonic clock, a client should have
	// stopped using the kernel.
	MarginMillis int64  `json:"margin_ms,omitempty"`
	Kernel       Kernel `json:"kernel"`
	// Once is a run-once session's slot record (granted events): running
	// on this node, or done or failed if the job ran already.
	Once *Task `json:"once,omitempty"`
	// Task is a task session's task (granted and cancel-requested events).
	Task *Task `json:"task,omitempty"`
}

// OnceTask is the id of the task that records run-once slot of kernel.
func OnceTask(kernel, slot string) string { return "once:" + kernel + ":" + slot }

// ClaimResult is the verdict on a claim.
type ClaimResult struct {
	Granted bool   `json:"granted"`
	Kernel  Kernel `json:"kernel"`
}

// Kernel is a kernel's lease as this agent sees it.
type Kernel struct {
	ID       string    `json:"id"`
	Holder   string    `json:"holder,omitempty"`
	Epoch    uint64    `json:"epoch"`
	Job      string    `json:"job,omitempty"`
	Granted  time.Time `json:"granted,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
	Released bool      `json:"released,omitempty"`
	// Live is true while the lease is held (not released, not expired).
	Live bool `json:"live"`
	// Session is the local session that holds the lease, on the holder's
	// agent only ("" for a one-shot claim).
	Session string `json:"session,omitempty"`
	// Waiters are the claims queued for the kernel, in the order they
	// will be granted: first the one that began to wait first.
	Waiters []Waiter `json:"waiters,omitempty"`
	Origin
}

// Lease events: what happened to a lease this agent holds. They appear on
// watch streams whose prefix covers the kernel's key, with Op "lease".
const (
	LeaseGranted  = "granted"  // our claim won after the settle window
	LeaseRenewed  = "renewed"  // the agent renewed our lease (every ttl/3)
	LeaseReleased = "released" // we released it
	LeaseExpired  = "expired"  // it ran out without renewal
	LeaseLost     = "lost"     // another node's claim won (e.g. after a partition healed)
	LeaseSuspect  = "suspect"  // this agent lost contact with more than half of the nodes it saw alive
)

// Record is one write as the agent stores it: the winning write of a
// service, blacklist, task or node key, or one of a kernel's lease records.
// It is the raw material of reads, for checks and for explaining a value.
type Record struct {
	Key  string `json:"key"`
	Op   string `json:"op"`   // put, delete, claim, renew, release
	Node string `json:"node"` // the writer
	// HLC is the write's hybrid logical clock; Stamp is the same as
	// "<wallms>.<logical>".
	HLC   uint64 `json:"hlc"`
	Stamp string `json:"stamp"`
	// Epoch, ExpiryMillis and Task are set for kernel records (epoch,
	// expiry), entries with a TTL (expiry) and tasks (state).
	Epoch        uint64 `json:"epoch,omitempty"`
	ExpiryMillis int64  `json:"expiry_ms,omitempty"`
	Task         string `json:"task,omitempty"`
	// Value is the write's encoded value (JSON), if any.
	Value []byte `json:"value,omitempty"`
}

// Explanation is what an agent holds for one key and which rule made its
// value win (`rumor explain`).
type Explanation struct {
	Key string `json:"key"`
	// Rule is the namespace's ordering rule, in words.
	Rule string `json:"rule"`
	// Verdict is the outcome in one line: the winning write, or the
	// kernel's holder.
	Verdict string `json:"verdict"`
	// Records are what the agent holds: a register's winning write, or
	// every lease record of a kernel, each with what the rule made of it.
	Records []ExplainedRecord `json:"records"`
	// Superseded are recent writes this agent saw lose to the winner, with
	// why (a bounded memory, empty after a restart).
	Superseded []ExplainedRecord `json:"superseded,omitempty"`
}

// ExplainedRecord is a record with what the ordering rule made of it.
type ExplainedRecord struct {
	Record
	Why string `json:"why"`
}

// Watch event ops, beyond a write's own (put, delete, claim, renew,
// release). README "Watching" shows each line's shape.
const (
	// OpSnapshot: an entry as it stood when the watch started (or
	// resynced). Snapshot lines carry no cursor: resume from synced on.
	OpSnapshot = "snapshot"
	// OpSynced: the snapshot is complete, changes follow; its cursor is
	// the snapshot's position.
	OpSynced = "synced"
	// OpRefresh: a write that changed nothing but the expiry (a TTL
	// refresh, or the same write again by the same writer).
	OpRefresh = "refresh"
	// OpExpired: an entry's TTL passed (svc, bl and kv entries); Time is
	// the expiry.
	OpExpired = "expired"
	// OpOwnerDown: the failure detector declared the owner of a live svc
	// entry dead, so the entry shows as down.
	OpOwnerDown = "owner-down"
	// OpOwnerUp: the owner of a svc entry shown down is no longer dead.
	OpOwnerUp = "owner-up"
	// OpConflict: a kv write lost to a concurrent write whose writer had
	// not seen it (same or higher version): Value is the winner, Lost the
	// write that lost. Every agent that sees both writes says so, the
	// losing writer's included.
	OpConflict = "conflict"
	// OpLease: one of this agent's lease events (Event.Lease).
	OpLease = "lease"
	// OpKeepalive: nothing happened for the keepalive interval; the cursor
	// is the stream's current position.
	OpKeepalive = "keepalive"
	// OpResync: the watch cannot go on from where it was (Reason); a fresh
	// snapshot and a synced line follow. The stream stays open.
	OpResync = "resync"
)

// Resync reasons, the Reason of an OpResync event.
const (
	// ResyncForeign: the since cursor is another agent's, or from before
	// this agent restarted or reset its state.
	ResyncForeign = "foreign"
	// ResyncTooOld: the since cursor is older than the agent's history
	// keeps (watch_history events).
	ResyncTooOld = "too-old"
	// ResyncBehind: this stream's reader fell more than watch_history
	// events behind (or the agent reset its state while it was open).
	ResyncBehind = "behind"
)

// Event is one line of a watch stream: a change, a snapshot entry, or a
// marker (synced, keepalive, resync).
type Event struct {
	Key string `json:"key,omitempty"`
	Op  string `json:"op"` // put, delete, claim, renew, release, or one of the Op* above
	// Lease is the lease event (LeaseGranted...) when Op is "lease".
	Lease string `json:"lease,omitempty"`
	Node  string `json:"node,omitempty"`
	// Stamp is the write's HLC as "<wallms>.<logical>".
	Stamp string    `json:"stamp,omitempty"`
	Time  time.Time `json:"time,omitzero"`
	// Value is the entry's current view (a Service, BlacklistEntry, Task,
	// Kernel or Member), nil after a delete.
	Value any `json:"value,omitempty"`
	// Lost is the write that lost, for a conflict event.
	Lost *KVEntry `json:"lost,omitempty"`
	// Cursor is where to resume the watch after this line
	// (WatchRequest.Since): every line has one but snapshot lines and
	// resync.
	Cursor string `json:"cursor,omitempty"`
	// Reason says why a resync happened (Resync*).
	Reason string `json:"reason,omitempty"`
}

// DefaultKeepalive is the interval of keepalive events when a watch does
// not set one.
const DefaultKeepalive = 10 * time.Second

// WatchRequest says what a watch follows and from where.
type WatchRequest struct {
	// Prefix selects the keys ("" for all).
	Prefix string
	// Since is the cursor of a line of an earlier watch: the watch resumes
	// right after it, or says resync and starts with a snapshot when it
	// cannot. "" starts with a snapshot.
	Since string
	// Keepalive is the interval of keepalive lines: 0 for
	// DefaultKeepalive, negative for none.
	Keepalive time.Duration
	// Reconnect is for Client.Watch only: how many times in a row it
	// reconnects, with Since set to the last cursor it saw, when the
	// stream breaks (0: never). A line read resets the count.
	Reconnect int
}
