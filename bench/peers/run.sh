#!/usr/bin/env bash
# Runs the peers benchmark (this directory, its own Go module) against a
# throw-away redis-server: started on 127.0.0.1 on a free port with
# persistence off, and stopped on every exit path (success, failure,
# Ctrl-C). Arguments go to the benchmark, e.g.
#
#   bench/peers/run.sh -short -rumor "$PWD/bench.json" -json "$PWD/bench-peers.json"
#
# `make bench-peers` calls this after installing redis-server if it is
# missing. GO picks the go command (default: go).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}
command -v redis-server >/dev/null || { echo "run.sh: redis-server not found (apt-get install -y redis-server)" >&2; exit 1; }

tmp=$(mktemp -d)
redis_pid=
cleanup() {
	if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
		echo "run.sh: redis-server (pid $redis_pid) stopped"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$here"
# Compile once up front, so the build is not inside any measurement.
"$GO" build -o /dev/null .

# A free port may be taken between the check and redis-server's bind:
# then the server exits at once and we try another.
for attempt in 1 2 3 4 5; do
	port=$("$GO" run . -free-port)
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
		--dir "$tmp" --logfile "$tmp/redis.log" &
	redis_pid=$!
	ready=
	for _ in $(seq 100); do
		if ! kill -0 "$redis_pid" 2>/dev/null; then
			break
		fi
		if grep -q "Ready to accept connections" "$tmp/redis.log" 2>/dev/null; then
			ready=1
			break
		fi
		sleep 0.1
	done
	if [ -n "$ready" ]; then
		break
	fi
	echo "run.sh: redis-server on port $port did not start (attempt $attempt):" >&2
	tail -5 "$tmp/redis.log" >&2 || true
	kill "$redis_pid" 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
	redis_pid=
done
if [ -z "$redis_pid" ]; then
	echo "run.sh: could not start redis-server" >&2
	exit 1
fi
echo "run.sh: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') (pid $redis_pid) on 127.0.0.1:$port, --save '' --appendonly no"

status=0
"$GO" run . -redis-port "$port" -redis-pid "$redis_pid" "$@" || status=$?
exit "$status"
