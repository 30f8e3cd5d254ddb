package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "write a consistent snapshot of the agent's state to a file",
		ArgsUsage: "<file>",
		Description: `Asks the running agent for a consistent copy of its state file (every write
it has accepted so far, flushed first) and writes it to FILE atomically: to a
temporary file in the same directory (mode 0600), synced, then renamed over
FILE. A snapshot cut short leaves FILE as it was. Restore it into a stopped
agent with "rumor restore FILE". No request timeout applies (--timeout).`,
		Action: action(true, func(ctx context.Context, k *call) error {
			return writeBackup(ctx, k, k.args[0])
		}),
	}
}

// writeBackup streams the agent's snapshot into a temporary file next to
// path and renames it into place once it is complete and synced.
func writeBackup(ctx context.Context, k *call, path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	n, err := k.client.Backup(ctx, f)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	_, err = fmt.Fprintf(k.out, "wrote %s: %d bytes\n", path, n)
	return err
}
