package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rumor-dev/rumor/config"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// configCommand returns the offline `rumor config` command group: `rumor
// config check FILE` loads a config file as `rumor agent --config FILE`
// would, validates it and prints the effective config.
func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check a config file (no agent needed)",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "load and validate a config file as `rumor agent --config FILE` would; print the effective config",
			ArgsUsage: "<file>",
			Description: "Loads FILE over the built-in defaults, exactly as the agent does at start and on SIGHUP, validates\n" +
				"it and prints the effective config as YAML, every key included (exit 0). Without --env, RUMOR_*\n" +
				"environment variables are ignored: the result is what the file alone gives. With --env they apply\n" +
				"as they would to `rumor agent --config FILE` run from this shell (flags are not considered).\n" +
				"A file that does not load or validate prints every problem, with its line when the key is in the\n" +
				"file, and exits 2.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "env", Usage: "apply RUMOR_* environment variables as `rumor agent` would"},
			},
			Action: runConfigCheck,
		}},
	}
}

func runConfigCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit(fmt.Sprintf("config check takes one argument, the file; got %d", c.NArg()), exitUsage)
	}
	path := c.Args().First()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cli.Exit(fmt.Sprintf("config: %v", err), exitUsage)
	}
	var cfg config.Config
	if c.Bool("env") {
		cfg, err = configWithEnv(path)
	} else {
		cfg = config.DefaultConfig()
		if err = cfg.LoadYAML(raw, path); err == nil {
			err = cfg.Validate()
		}
	}
	if err != nil {
		return cli.Exit(describeConfigError(err, path, raw), exitUsage)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	_, err = fmt.Fprintf(c.App.Writer, "# %s: valid; the effective config:\n%s", path, out)
	return err
}

// configWithEnv builds the config as `rumor agent --config path` would in
// this environment, through the agent command's own flag handling.
func configWithEnv(path string) (config.Config, error) {
	var (
		cfg config.Config
		err error
	)
	cmd := agentCommand()
	cmd.Action = func(c *cli.Context) error {
		cfg, err = configFromFlags(c)
		return nil
	}
	app := &cli.App{Name: "rumor", Commands: []*cli.Command{cmd}, HideHelp: true, Writer: discardWriter{}, ErrWriter: discardWriter{}}
	if rerr := app.Run([]string{"rumor", "agent", "--config", path}); rerr != nil {
		return cfg, rerr // a bad RUMOR_* value (e.g. a duration)
	}
	return cfg, err
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// describeConfigError lists err's problems one per line, each prefixed with
// path:line when its key appears in raw.
func describeConfigError(err error, path string, raw []byte) string {
	lines := keyLines(raw)
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *config.FieldError
		if errors.As(err, &fe) {
			for _, k := range strings.Split(fe.Field, "/") {
				if n, ok := lines[k]; ok {
					out = append(out, fmt.Sprintf("%s:%d: %s: %s", path, n, fe.Field, fe.Msg))
					return
				}
			}
			out = append(out, fmt.Sprintf("%s: %s: %s (the default or the environment's value: the key is not in the file)", path, fe.Field, fe.Msg))
			return
		}
		out = append(out, err.Error()) // yaml errors name their lines
	}
	walk(err)
	return strings.Join(out, "\n")
}

// keyLines maps each top-level key of the YAML document raw to its line.
func keyLines(raw []byte) map[string]int {
	var doc yaml.Node
	out := map[string]int{}
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i].Line
	}
	return out
}
