#!/usr/bin/env bash
# make sim: every scenario of internal/sim/testdata/scenarios on the
# simulated network in virtual time (no race detector: 50-agent clusters),
# one line per scenario and a summary of the virtual and wall time taken.
# On failure the whole output is shown.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$GO" test -count=1 -timeout 20m -v -run 'TestScenarios$' ./internal/sim/ -args -datadriven-quiet >"$log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	cat "$log"
	echo "make sim: FAILED"
	exit $rc
fi
# One line per scenario: its verdict, then what it measured (or why it
# was skipped), then the summary.
awk '
	/^=== RUN   TestScenarios\// { cur = $3; sub(/^TestScenarios\//, "", cur); next }
	/^    scenario_test.go:[0-9]+: / { line = $0; sub(/^ +scenario_test.go:[0-9]+: /, "", line); m[cur] = line; next }
	/^    --- (PASS|SKIP|FAIL): TestScenarios\// { name = $3; sub(/^TestScenarios\//, "", name); v = $2; sub(/:$/, "", v); printf "  %-4s %-28s %s\n", v, name, m[name] }
	/^sim: / { print }
' "$log"
