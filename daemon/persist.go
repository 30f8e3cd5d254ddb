package daemon

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/store"
)

const (
	// stateFile is the replicated state's file inside the data dir.
	stateFile = "state.db"
	// metaLastRunning records when the agent last ran (wall ms), to spot a
	// return after more than the tombstone horizon.
	metaLastRunning = "last_running"
	// reserveAhead is how far ahead of the stamps it issues the agent
	// durably reserves HLC values, so a restart never reuses a stamp.
	reserveAhead = 1000 // ms
)

// openStore opens the state file, restores the clock past every stamp the
// agent may have issued, and resets the state if the agent was away longer
// than the tombstone horizon (merging it could resurrect collected deletes).
func (a *Agent) openStore() error {
	path := filepath.Join(a.cfg.DataDir, stateFile)
	if a.cfg.ResetState {
		moved, err := store.ResetFile(path)
		if err != nil {
			return err
		}
		if moved != "" {
			a.log.Warn("reset-state: moved the old state aside; resyncing from peers", "moved_to", moved)
		}
	}
	// Heartbeats are re-learnt within a second of a restart; persisting
	// them would cost a commit every flush interval on an idle cluster.
	ephemeral := func(key string) bool { return crdt.NamespaceOf(key) == crdt.NSNode }
	st, err := store.Open(path, store.Options{Logger: a.log, Ephemeral: ephemeral})
	if err != nil {
		return err
	}
	a.store = st
	a.reserved = st.ReservedHLC().WallMS()
	a.hlc.Restore(crdt.MakeHLC(a.reserved, 0))
	now := a.nowMS()
	if b, ok := st.Meta(metaLastRunning); ok && len(b) == 8 {
		if away := now - int64(binary.BigEndian.Uint64(b)); away > a.cfg.TombstoneHorizon.Milliseconds() {
			a.log.Warn("away longer than the tombstone horizon: resetting state and resyncing from peers",
				"away", (time.Duration(away) * time.Millisecond).Round(time.Second), "horizon", a.cfg.TombstoneHorizon)
			if err := st.Reset(); err != nil {
				st.Close()
				return err
			}
		}
	}
	if err := a.markRunning(); err != nil {
		st.Close()
		return err
	}
	a.log.Info("state loaded", "keys", st.Len(), "file", path)
	return nil
}

// markRunning records that the agent is running now.
func (a *Agent) markRunning() error {
	if err := a.store.SetMeta(metaLastRunning, binary.BigEndian.AppendUint64(nil, uint64(a.nowMS()))); err != nil {
		return fmt.Errorf("daemon: record last running time: %w", err)
	}
	return nil
}

// stamp issues the next local stamp. Before it issues one past the durable
// reservation it extends the reservation, so stamps survive kill -9.
// Called with a.hlcMu held.
func (a *Agent) stamp() (crdt.Stamp, error) {
	h := a.hlc.Now(a.nowMS())
	if h.WallMS() >= a.reserved-reserveAhead/5 {
		next := h.WallMS() + reserveAhead
		if err := a.store.ReserveHLC(crdt.MakeHLC(next, 0)); err != nil {
			return crdt.Stamp{}, fmt.Errorf("daemon: reserve clock: %w", err)
		}
		a.reserved = next
	}
	return crdt.Stamp{HLC: h, Node: a.self}, nil
}

// collect drops tombstones and expired entries older than the horizon
// (lease records need no collection: merges drop those that cannot matter),
// and records that the agent is running.
func (a *Agent) collect() {
	if n := a.store.Collect(a.nowMS(), a.cfg.TombstoneHorizon.Milliseconds()); n > 0 {
		a.log.Info("collected old tombstones and expired entries", "removed", n)
	}
	if err := a.markRunning(); err != nil {
		a.log.Warn("mark running", "err", err)
	}
}
