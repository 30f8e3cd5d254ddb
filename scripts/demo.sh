#!/usr/bin/env bash
# Three rumor agents on 127.0.0.1 joined together, each with its own data dir
# and socket, and a short scripted show of every namespace converging.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/rumor
dir=.demo
rm -rf "$dir"; mkdir -p "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() { # start <n> [join-addr]
  local n=$1 join=${2:-}
  $bin agent --data-dir "$dir/n$n" --listen "/ip4/127.0.0.1/tcp/0" --metrics-addr 127.0.0.1:0 --log-level warn ${join:+--join "$join"} \
    >"$dir/n$n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/n$n/rumor.sock" ] && return; sleep 0.05; done
  echo "agent $n did not start; log:"; cat "$dir/n$n.log"; exit 1
}
r() { local n=$1; shift; echo "+ [n$n] rumor $*"; $bin --socket "$dir/n$n/rumor.sock" "$@"; }
wait_for() { # wait_for <desc> <cmd...>: poll until the command succeeds (5 s)
  local what=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return; sleep 0.05; done
  echo "timed out waiting for: $what"; exit 1
}

start 1
join=$($bin --socket "$dir/n1/rumor.sock" status -o json | sed -n 's/.*"\(\/ip4\/127\.0\.0\.1\/tcp\/[0-9]*\/p2p\/[^"]*\)".*/\1/p' | head -1)
[ -n "$join" ] || { echo "could not read n1's address"; exit 1; }
start 2 "$join"; start 3 "$join"
wait_for "three members alive" bash -c "[ \$($bin --socket $dir/n1/rumor.sock members -o json | grep -c '\"state\": \"alive\"') -eq 3 ]"
r 1 members

echo; echo "== service status: set on n1, read on n3"
r 1 svc set web w1 --addr 10.0.0.1:8080 --status up --tag zone=a
wait_for "svc on n3" $bin --socket "$dir/n3/rumor.sock" svc get web w1
r 3 svc ls

echo; echo "== blacklist: add on n2, check on n1 and n3"
r 2 bl add fraud user42 --reason chargeback --ttl 1h
wait_for "bl on n3" $bin --socket "$dir/n3/rumor.sock" bl has fraud user42
r 3 bl has fraud user42 && echo "user42 is banned on n3"
r 1 bl ls fraud

echo; echo "== tasks: assign on n1 to n2, ask n3 where it runs, cancel from n3"
n2=$($bin --socket "$dir/n2/rumor.sock" status -o json | sed -n 's/.*"node": *"\([^"]*\)".*/\1/p' | head -1)
r 1 task assign nightly-report --node "$n2"
wait_for "task on n3" $bin --socket "$dir/n3/rumor.sock" task where nightly-report
r 3 task where nightly-report
r 3 task cancel nightly-report
wait_for "cancelled" bash -c "$bin --socket $dir/n1/rumor.sock task where nightly-report | grep -q cancelled"
r 1 task where nightly-report

echo; echo "== kernels: n1 claims, n2 is denied (exit 3), n1 releases, n2 claims"
r 1 kernel claim jupyter-0 --ttl 30s --job notebook-1
wait_for "lease on n2" bash -c "$bin --socket $dir/n2/rumor.sock kernel who jupyter-0 | grep -q live"
set +e; r 2 kernel claim jupyter-0; echo "exit code: $?"; set -e
r 1 kernel release jupyter-0
wait_for "release on n2" bash -c "! $bin --socket $dir/n2/rumor.sock kernel who jupyter-0 -o json | grep -q '\"live\": *true'"
r 2 kernel claim jupyter-0
r 3 kernel ls
echo; echo "demo done: agents stop now (logs in $dir/)"
