package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/replica"
	"github.com/rumor-dev/rumor/store"
)

// restoreCommand returns the offline `rumor restore FILE` command: it
// installs a backup made by `rumor backup` as the state file of an agent
// that is not running.
func restoreCommand() *cli.Command {
	d := config.DefaultConfig()
	return &cli.Command{
		Name:      "restore",
		Usage:     "install a backup (from `rumor backup`) as a stopped agent's state",
		ArgsUsage: "<file>",
		Description: "Stop the agent first: restore refuses while an agent holds <data-dir>/state.db. It reads the\n" +
			"whole backup and checks every record before it replaces anything; the current state.db is kept as\n" +
			"state.db.before-restore-<time>. When the agent starts, it serves the restored state and anti-entropy\n" +
			"merges it with its peers' state: a restore never overrides newer writes from peers, it only brings\n" +
			"back what the cluster lost. A backup older than tombstone_horizon is refused: peers may have\n" +
			"collected deletes it would resurrect (an agent away that long resets its state the same way).\n" +
			"The data dir comes from --data-dir, RUMOR_DATA_DIR or --config, as for `rumor agent`.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"RUMOR_CONFIG"}, Usage: "YAML config file (for data_dir and tombstone_horizon)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: []string{"RUMOR_DATA_DIR"}, Usage: "data directory", DefaultText: d.DataDir},
		},
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit(fmt.Sprintf("restore takes one argument, the backup file; got %d", c.NArg()), exitUsage)
	}
	backup := c.Args().First()
	cfg := config.DefaultConfig()
	if p := c.String("config"); p != "" {
		if err := cfg.LoadFile(p); err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir")
	}
	if err := cfg.Validate(); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	info, err := store.VerifyFile(backup)
	if err != nil {
		return restoreError(err, "")
	}
	taken, err := backupTime(info)
	if err != nil {
		return cli.Exit(fmt.Sprintf("restore: %s: %v", backup, err), exitUsage)
	}
	age := time.Since(taken)
	if age > cfg.TombstoneHorizon {
		return cli.Exit(fmt.Sprintf("restore: %s was taken %v ago, longer than tombstone_horizon (%v): peers may have collected deletes "+
			"that it would resurrect, and the agent would discard it at start anyway. Start the agent without it to resync from peers.",
			backup, age.Round(time.Second), cfg.TombstoneHorizon), exitUsage)
	}
	path := filepath.Join(cfg.DataDir, replica.StateFile)
	kept, info, err := store.RestoreFile(path, backup)
	if err != nil {
		return restoreError(err, path)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "restored %s into %s: %d keys, taken %v ago\n", backup, path, info.Entries, age.Round(time.Second))
	if kept != "" {
		fmt.Fprintf(w, "the previous state is kept as %s\n", kept)
	}
	_, err = fmt.Fprintln(w, "start the agent: it serves this state and anti-entropy merges it with its peers' (newer writes win)")
	return err
}

// backupTime is when the backup was taken: the agent records the time in
// its state just before it copies it.
func backupTime(info store.BackupInfo) (time.Time, error) {
	b, ok := info.Meta[replica.MetaLastRunning]
	if !ok || len(b) != 8 {
		return time.Time{}, errors.New("holds no time of writing, so its age against tombstone_horizon is unknown; make backups with `rumor backup`")
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b))), nil
}

// restoreError gives store errors the command's exit codes: an unusable
// backup is bad input (2), anything else an error (1). path is the state
// file being replaced, if known.
func restoreError(err error, path string) error {
	switch {
	case errors.Is(err, store.ErrBackup):
		return cli.Exit("restore: "+err.Error(), exitUsage)
	case errors.Is(err, store.ErrLocked) && path != "":
		return cli.Exit(fmt.Sprintf("restore: %s is locked by a running agent: stop it first (restore replaces the state of a stopped agent); nothing changed", path), 1)
	case errors.Is(err, store.ErrLocked):
		return cli.Exit("restore: "+err.Error(), 1)
	}
	return cli.Exit("restore: "+err.Error(), 1)
}
