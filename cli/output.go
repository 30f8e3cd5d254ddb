package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rumor-dev/rumor/cli/table"
	"github.com/rumor-dev/rumor/rpc"
)

func cmdStatus(ctx context.Context, k *call) error {
	s, err := k.client.Status(ctx)
	if err != nil {
		return err
	}
	if k.json {
		return k.printJSON(s)
	}
	return table.Status(k.out, s, k.clock())
}

func cmdMembers(ctx context.Context, k *call) error {
	ms, err := k.client.Members(ctx)
	if err != nil {
		return err
	}
	if k.json {
		return k.printJSON(nonNil(ms))
	}
	return table.Members(k.out, ms, k.clock())
}

// services prints rows as a table, or v as JSON.
func (k *call) services(rows []rpc.Service, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	return table.Services(k.out, rows, k.clock())
}

// entries prints rows as a table, or v as JSON.
func (k *call) entries(rows []rpc.BlacklistEntry, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	return table.Blacklist(k.out, rows, k.clock())
}

// blacklists prints rows (every list and its number of ids) as a table,
// or v as JSON.
func (k *call) blacklists(rows []rpc.BlacklistSummary, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	return table.Lists(k.out, rows)
}

// tasks prints rows as a table, or v as JSON.
func (k *call) tasks(rows []rpc.Task, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	return table.Tasks(k.out, rows, k.clock())
}

// kernels prints rows as a table, or v as JSON.
func (k *call) kernels(rows []rpc.Kernel, v any) error {
	if k.json {
		return k.printJSON(v)
	}
	return table.Kernels(k.out, rows, k.clock())
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

// clock is the time tables show ages from, read once per command after
// the agent has answered.
func (k *call) clock() time.Time {
	if k.now.IsZero() {
		k.now = time.Now()
	}
	return k.now
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
