#!/usr/bin/env bash
# make sim-scale: internal/sim's TestScale with SIM_N agents (default 300)
# in three regions on the simulated network, in virtual time: cold start,
# detection of 10 killed agents, propagation of 50 writes, a region's
# partition and heal, and the idle cost per agent (docs/scale.md). Prints
# each phase as it ends, then the table. On failure the whole output is
# shown. Extra flags for the test binary go in
# SIM_FLAGS, e.g. SIM_FLAGS=-sim.scale.skip=partition.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
N=${SIM_N:-300}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
# shellcheck disable=SC2086 # SIM_FLAGS is a list of flags
"$GO" test -count=1 -timeout 0 -v -run '^TestScale$' ./internal/sim/ -args -sim.scale="$N" ${SIM_FLAGS:-} 2>&1 | tee "$log" | grep --line-buffered -E '^ +scale_test.go:[0-9]+: scale: '
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	cat "$log"
	echo "make sim-scale: FAILED"
	exit "$rc"
fi
sed -n '/^scale: /,/^| wall time/p' "$log"
echo "make sim-scale: $N agents, wall $(( $(date +%s) - start )) s (with the build)"
