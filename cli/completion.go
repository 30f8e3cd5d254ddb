package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The completion scripts are urfave/cli v2's autocomplete/bash_autocomplete
// and autocomplete/zsh_autocomplete (MIT licence) with the program name
// fixed to rumor. Both ask the program itself for candidates, by running
// the command line typed so far with --generate-bash-completion.
const bashCompletion = `# bash completion for rumor: source it, or put it in
# /etc/bash_completion.d/rumor (rumor completion bash > /etc/bash_completion.d/rumor)

_rumor_init_completion() {
  COMPREPLY=()
  _get_comp_words_by_ref "$@" cur prev words cword
}

_rumor_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts base words
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _rumor_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _rumor_bash_autocomplete rumor
`

const zshCompletion = `#compdef rumor
# zsh completion for rumor: put it in a directory of your $fpath as _rumor
# (rumor completion zsh > "${fpath[1]}/_rumor"), or source it after compinit.

_rumor_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _rumor_zsh_autocomplete rumor
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "<bash|zsh>",
		Description: `Prints a script that completes rumor's commands and flags:
   bash:  rumor completion bash > /etc/bash_completion.d/rumor   (or: source <(rumor completion bash))
   zsh:   rumor completion zsh > "${fpath[1]}/_rumor"            (then restart zsh)`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef(c, "completion needs one argument: bash or zsh")
			}
			var script string
			switch c.Args().First() {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			default:
				return usagef(c, "no completion for %q: want bash or zsh", c.Args().First())
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
