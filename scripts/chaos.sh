#!/usr/bin/env bash
# make chaos: five real agents in network namespaces (../shared/netlab),
# faults in seeded random order, a recorded workload, and the checks
# (cmd/rumor-chaos). Short form by default (about 3 minutes); LONG=1 runs
# 200 cycles. CYCLES=n and CHAOS_FLAGS="..." override; NETLAB=path points at
# the netlab script.
#
# It needs root and netlab's Debian packages (installed here if missing).
# Where it cannot run, it says so loudly and exits 0, so that `make test`
# stays usable on a laptop; CI runs as root and so runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	{
		echo "################################################################"
		echo "## make chaos SKIPPED: $*"
		echo "################################################################"
	} >&2
	exit 0
}

cycles=${CYCLES:-20}
if [[ ${LONG:-} == 1 ]]; then cycles=${CYCLES:-200}; fi

netlab=${NETLAB:-}
if [[ -z $netlab ]]; then
	for c in ../shared/netlab/netlab /work/shared/netlab/netlab; do
		if [[ -x $c ]]; then netlab=$c; break; fi
	done
fi
[[ -n $netlab && -x $netlab ]] || skip "netlab not found (looked in ../shared/netlab; set NETLAB=/path/to/netlab)"
[[ $(id -u) == 0 ]] || skip "it needs root (network namespaces, nftables); run it as root"

need=()
for c in ip:iproute2 nft:nftables iptables:iptables ping:iputils-ping; do
	command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
if ((${#need[@]})); then
	echo "make chaos: installing ${need[*]}" >&2
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/tmp/rumor-chaos-apt.log 2>&1; then
		skip "could not install ${need[*]} (see /tmp/rumor-chaos-apt.log)"
	fi
fi

# Can this machine make namespaces and a bridge at all? (A container
# without CAP_SYS_ADMIN/CAP_NET_ADMIN cannot.)
if ! out=$(NETLAB_PREFIX=rcprobe "$netlab" up 1 2>&1); then
	NETLAB_PREFIX=rcprobe "$netlab" down >/dev/null 2>&1 || true
	skip "netlab cannot build a lab here: $out"
fi
NETLAB_PREFIX=rcprobe "$netlab" down >/dev/null

go=${GO:-go}
CGO_ENABLED=0 $go build -o bin/rumor ./cmd/rumor
$go build -o bin/rumor-chaos ./cmd/rumor-chaos
# shellcheck disable=SC2086
exec bin/rumor-chaos -cycles "$cycles" -netlab "$netlab" -json chaos.json ${CHAOS_FLAGS:-}
