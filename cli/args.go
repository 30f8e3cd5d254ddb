package cli

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// reorder rewrites args so that urfave/cli, which stops parsing flags at the
// first argument, sees every flag: the flags of the final command move ahead
// of its arguments ("svc set web i1 --addr x" becomes "svc set --addr x web
// i1"), and global flags given after a command (--socket, -o, --timeout on a
// command that does not define them itself) move to the front. Everything
// after "--" stays an argument; arguments are dropped if --help is given. Unknown flags stay where urfave/cli will
// report them.
func reorder(args []string, globals []cli.Flag, cmds []*cli.Command) []string {
	var hoisted, head []string
	flags, level := globals, cmds
	i := 0
	// Walk the command path: flags of each level, then a command name.
	for i < len(args) {
		a := args[i]
		if a == "--" {
			return concat(hoisted, head, args[i:])
		}
		if isFlag(a) {
			if n := flagLen(a, args[i+1:], flags); n > 0 {
				head = append(head, args[i:i+n]...)
				i += n
			} else if n := flagLen(a, args[i+1:], globals); n > 0 {
				hoisted = append(hoisted, args[i:i+n]...)
				i += n
			} else {
				head = append(head, a)
				i++
			}
			continue
		}
		cmd := find(level, a)
		if cmd == nil {
			return concat(hoisted, head, args[i:]) // arguments, or an unknown command
		}
		head = append(head, a)
		i++
		if cmd.SkipFlagParsing {
			return concat(hoisted, head, args[i:])
		}
		flags, level = cmd.Flags, cmd.Subcommands
		if len(level) == 0 {
			break
		}
	}
	// The final command: its flags, then its arguments.
	var own, pos []string
	dash := false
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--":
			dash = true
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case isFlag(a):
			if n := flagLen(a, args[i+1:], flags); n > 0 {
				own = append(own, args[i:i+n]...)
				i += n
			} else if n := flagLen(a, args[i+1:], globals); n > 0 {
				hoisted = append(hoisted, args[i:i+n]...)
				i += n
			} else {
				own = append(own, a)
				i++
			}
		default:
			pos = append(pos, a)
			i++
		}
	}
	out := concat(hoisted, head, own)
	if slices.ContainsFunc(own, isHelp) {
		// urfave/cli reads an argument after --help as a topic.
		return out
	}
	if dash {
		out = append(out, "--")
	}
	return append(out, pos...)
}

func concat(parts ...[]string) []string {
	return slices.Concat(parts...)
}

func isHelp(a string) bool {
	switch a {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flagLen returns how many tokens the flag a takes (1 or 2, with its value)
// if it is one of flags, else 0.
func flagLen(a string, rest []string, flags []cli.Flag) int {
	name := strings.TrimLeft(a, "-")
	name, _, hasValue := strings.Cut(name, "=")
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		if hasValue || len(rest) == 0 {
			return 1
		}
		if tv, ok := f.(interface{ TakesValue() bool }); ok && !tv.TakesValue() {
			return 1
		}
		return 2
	}
	return 0
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
