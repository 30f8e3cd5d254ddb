// Package cli is rumor's command line. It talks to the local agent only
// through rpc.Client; the agent itself is a command the caller supplies.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rumor-dev/rumor/rpc"
	"github.com/urfave/cli/v2"
)

// Exit codes returned by Run.
const (
	ExitOK     = 0 // success
	ExitError  = 1 // the agent failed, a key was not found, the agent is unreachable, bl has: absent
	ExitUsage  = 2 // bad command line: unknown command, wrong arguments, bad flag value
	ExitDenied = 3 // refused: another node owns the entry or holds the kernel
	ExitEmpty  = 4 // task take: no task to take
)

// DefaultSocket is where the agent listens unless --socket or RUMOR_SOCKET
// says otherwise.
const DefaultSocket = "./data/rumor.sock"

const description = `rumor keeps a small replicated state (services, blacklists, tasks, kernel
leases) on every host, by gossip, with no leader. These commands talk to the
local agent over its Unix socket; start one with "rumor agent".

Flags may come before or after arguments. Output is a table unless -o json.
Node ids are shortened to their last 8 characters in tables.

Exit codes:
   0  success
   1  error: the agent failed, no such key, the agent is not running,
      "bl has": the id is absent
   2  usage: unknown command, missing or extra argument, bad flag value
   3  denied: another node owns the entry, or holds the kernel
   4  "task take": no task to take (within --wait)`

// Run runs the rumor command line with args (without the program name, as
// os.Args[1:]), writing output to stdout and messages to stderr, and returns
// the exit code (see ExitOK and the others). It never exits the process.
// The extra commands (such as "agent") are added to the app as they are;
// with one named "version", the global flag --version runs it too.
func Run(args []string, stdout, stderr io.Writer, extra ...*cli.Command) int {
	var notFound error
	flags := globalFlags()
	versionCmd := find(extra, "version")
	if versionCmd != nil {
		flags = append(flags, &cli.BoolFlag{Name: "version", Usage: `print the version, as "rumor version"`})
	}
	app := &cli.App{
		Name:                      "rumor",
		Usage:                     "gossip-replicated service, blacklist, task and kernel state",
		Description:               description,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		HideVersion:               true,
		DisableSliceFlagSeparator: true,
		Flags:                     flags,
		Commands:                  append(append(commands(), backupCommand(), completionCommand()), extra...),
		EnableBashCompletion:      true,
		ExitErrHandler:            func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) {
			notFound = usagef(c, "unknown command %q", name)
		},
		Before: func(c *cli.Context) error {
			if c.Bool("version") && c.Args().Present() {
				return usagef(c, "--version takes no command or argument, got %q", c.Args().First())
			}
			return nil
		},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				return versionCmd.Action(c)
			}
			if c.Args().Present() {
				return usagef(c, "unknown command %q", c.Args().First())
			}
			cli.HelpPrinter(stderr, cli.AppHelpTemplate, c.App)
			return &exitError{code: ExitUsage, msg: "missing command"}
		},
	}
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		prepare(c, stderr)
	}

	// urfave/cli looks for the completion request as the very last argument.
	complete := len(args) > 0 && args[len(args)-1] == completionFlag
	if complete {
		args = args[:len(args)-1]
	}
	args = reorder(args, app.Flags, app.Commands)
	if complete {
		args = append(args, completionFlag)
	}
	err := app.Run(append([]string{"rumor"}, args...))
	if err == nil {
		err = notFound
	}
	code, msg := exitCode(err)
	if msg != "" {
		fmt.Fprintf(stderr, "rumor: %s\n", msg)
	}
	return code
}

// completionFlag is the argument with which the shell completion scripts
// ask for candidates.
const completionFlag = "--generate-bash-completion"

// prepare gives c and its subcommands usage-error handling and, for command
// groups, an action that refuses unknown subcommands.
func prepare(c *cli.Command, stderr io.Writer) {
	if c.OnUsageError == nil {
		c.OnUsageError = onUsageError
	}
	if len(c.Subcommands) > 0 && c.Action == nil {
		if c.CustomHelpTemplate == "" {
			c.CustomHelpTemplate = groupHelpTemplate
		}
		if c.UsageText == "" {
			c.UsageText = "rumor " + c.Name + " command [command options] [arguments...]"
		}
		c.Action = func(ctx *cli.Context) error {
			if ctx.Args().Present() {
				return usagef(ctx, "unknown command %q", c.Name+" "+ctx.Args().First())
			}
			cli.HelpPrinter(stderr, c.CustomHelpTemplate, ctx.Command)
			return &exitError{code: ExitUsage, msg: "missing subcommand for " + c.Name}
		}
	}
	for _, s := range c.Subcommands {
		prepare(s, stderr)
	}
}

// groupHelpTemplate is urfave/cli's SubcommandHelpTemplate listing the
// subcommands without categories, which "rumor help <group>" would show empty
// (they are filled in only when the group runs).
var groupHelpTemplate = strings.Replace(cli.SubcommandHelpTemplate,
	`{{template "visibleCommandCategoryTemplate" .}}`, `{{template "visibleCommandTemplate" .}}`, 1)

func onUsageError(c *cli.Context, err error, _ bool) error {
	return usagef(c, "%s", strings.TrimSpace(err.Error()))
}

// exitError ends Run with code, printing msg (if any) and hint (if any).
type exitError struct {
	code int
	msg  string
	hint string
}

func (e *exitError) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + "\n" + e.hint
}

// usagef returns a usage error (exit 2) that points at c's help.
func usagef(c *cli.Context, format string, args ...any) error {
	name := "rumor"
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return &exitError{
		code: ExitUsage,
		msg:  fmt.Sprintf(format, args...),
		hint: fmt.Sprintf("run %q for usage", name+" --help"),
	}
}

// exitCode maps err to an exit code and the message to print.
func exitCode(err error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, ee.Error()
	}
	var ec cli.ExitCoder // from an extra command, e.g. cli.Exit("...", 4)
	if errors.As(err, &ec) {
		return ec.ExitCode(), err.Error()
	}
	var sd *rpc.SocketDeniedError // the socket's permissions keep us out
	if errors.As(err, &sd) {
		return ExitError, deniedMessage(sd.Path, statSocket(sd.Path))
	}
	var re *rpc.Error
	if errors.As(err, &re) {
		switch re.Code {
		case rpc.CodeBadRequest, rpc.CodeTooLarge, rpc.CodeMethodNotAllowed:
			return ExitUsage, err.Error()
		case rpc.CodeDenied:
			return ExitDenied, err.Error()
		}
		return ExitError, err.Error()
	}
	return ExitError, err.Error()
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "socket",
			Usage:   "the agent's Unix socket",
			EnvVars: []string{"RUMOR_SOCKET"},
			Value:   DefaultSocket,
		},
		&cli.StringFlag{
			Name:    "api",
			Usage:   "the agent's loopback TCP API (http://127.0.0.1:PORT, its api_listen) instead of the socket; needs --token-file",
			EnvVars: []string{"RUMOR_API"},
		},
		&cli.StringFlag{
			Name:    "token-file",
			Usage:   "file holding the TCP API's bearer token (the agent's api_token_file)",
			EnvVars: []string{"RUMOR_TOKEN_FILE"},
		},
		outputFlag(),
		&cli.DurationFlag{
			Name:  "timeout",
			Usage: "give up on a request after this long (0: never); watches have none",
			Value: 30 * time.Second,
		},
	}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "output",
		Aliases: []string{"o"},
		Usage:   "output format: table or json",
		Value:   "table",
	}
}

// call is one command's invocation: its arguments, a client, and how to
// print.
type call struct {
	c      *cli.Context
	args   []string
	json   bool
	raw    bool // -o raw: values alone (kv)
	out    io.Writer
	client *rpc.Client
	now    time.Time // set on first use by age
}

// action wraps fn as a command action: it checks the argument count against
// the command's ArgsUsage ("<x>" required, "[x]" optional), the output
// format, and connects a client. stream commands get no request timeout.
func action(stream bool, fn func(ctx context.Context, k *call) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		req, opt := argSpec(c.Command.ArgsUsage)
		args := c.Args().Slice()
		switch {
		case len(args) < req:
			names := strings.Fields(c.Command.ArgsUsage)
			return usagef(c, "missing argument %s", names[len(args)])
		case len(args) > req+opt:
			return usagef(c, "unexpected argument %q", args[req+opt])
		}
		format := "table"
		for _, x := range c.Lineage() {
			if x.IsSet("output") {
				format = x.String("output")
				break
			}
		}
		raw := slices.ContainsFunc(c.Lineage(), func(x *cli.Context) bool { return x.Command != nil && x.Command.Name == "kv" }) // kv commands print raw values
		switch {
		case format == "raw" && raw:
		case format != "table" && format != "json" && raw:
			return usagef(c, "bad output format %q: want table, json or raw", format)
		case format != "table" && format != "json":
			return usagef(c, "bad output format %q: want table or json", format)
		}
		return withClient(c, stream, func(ctx context.Context, client *rpc.Client) error {
			return fn(ctx, &call{
				c: c, args: args, json: format == "json", raw: format == "raw", out: c.App.Writer,
				client: client,
			})
		})
	}
}

// WithClient runs fn with a client of the agent that the global flags
// (--socket, --api, --token-file) name and a context that ends after
// --timeout, as the commands of Run do: for the caller's extra commands
// that ask the agent something. Usage errors it returns end Run with
// ExitUsage.
func WithClient(c *cli.Context, fn func(ctx context.Context, client *rpc.Client) error) error {
	return withClient(c, false, fn)
}

// withClient is WithClient; stream commands get no request timeout.
func withClient(c *cli.Context, stream bool, fn func(ctx context.Context, client *rpc.Client) error) error {
	socket := c.String("socket")
	if socket == "" {
		return usagef(c, "--socket must not be empty")
	}
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return usagef(c, "--timeout must not be negative")
	}
	ctx := c.Context
	if !stream && timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	client, err := newClient(c, socket)
	if err != nil {
		return err
	}
	defer client.Close()
	err = fn(ctx, client)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("the agent did not answer within %v (see --timeout): %w", timeout, err)
	}
	return err
}

// newClient connects to the agent: over --api with the token in
// --token-file if --api is set, else over the socket.
func newClient(c *cli.Context, socket string) (*rpc.Client, error) {
	api, tokenFile := c.String("api"), c.String("token-file")
	if api == "" {
		if tokenFile != "" {
			return nil, usagef(c, "--token-file goes with --api (the socket needs no token)")
		}
		return rpc.NewClient(socket), nil
	}
	if tokenFile == "" {
		return nil, usagef(c, "--api needs --token-file (or RUMOR_TOKEN_FILE): the TCP API is served only with a bearer token")
	}
	token, err := rpc.ReadToken(tokenFile)
	if err != nil {
		return nil, usagef(c, "%v", err)
	}
	client, err := rpc.NewTCPClient(api, token)
	if err != nil {
		return nil, usagef(c, "--api: %v", err)
	}
	return client, nil
}

// argSpec counts the required ("<x>") and optional ("[x]") arguments in an
// ArgsUsage string.
func argSpec(usage string) (req, opt int) {
	for _, f := range strings.Fields(usage) {
		switch {
		case f[0] == '<':
			req++
		case strings.HasSuffix(f, "...]"):
			opt = math.MaxInt - req // any number
		case f[0] == '[':
			opt++
		}
	}
	return req, opt
}

// ttlAndWait returns a claim's --ttl in milliseconds (0 if not set) and
// its --wait.
func ttlAndWait(k *call) (int64, time.Duration, error) {
	ms, err := ttl(k)
	if err != nil {
		return 0, 0, err
	}
	wait := k.c.Duration("wait")
	if wait < 0 {
		return 0, 0, usagef(k.c, "--wait must not be negative, got %v", wait)
	}
	return ms, wait, nil
}

// ttl returns the --ttl flag in milliseconds, 0 if it is not set. A set TTL
// must be at least a millisecond.
func ttl(k *call) (int64, error) {
	if !k.c.IsSet("ttl") {
		return 0, nil
	}
	d := k.c.Duration("ttl")
	if d < time.Millisecond {
		return 0, usagef(k.c, "--ttl must be positive (at least 1ms), got %v", d)
	}
	return d.Milliseconds(), nil
}
