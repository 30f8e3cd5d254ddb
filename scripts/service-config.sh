#!/usr/bin/env bash
# Prints the config a service install uses (make install's
# /etc/rumor/rumor.yaml, the package's): configs/rumor.yaml (or $1) with
# data_dir /var/lib/rumor, socket /run/rumor/rumor.sock and the socket open
# to group rumor (socket_group rumor, socket_mode 0660), as
# configs/rumor.service expects. It fails if a line it replaces has changed
# in the source, rather than print a config the unit cannot run with.
set -euo pipefail
src=${1:-"$(dirname "$0")/../configs/rumor.yaml"}
out=$(sed -e 's|^data_dir: ./data$|data_dir: /var/lib/rumor|' -e 's|^socket: ""$|socket: /run/rumor/rumor.sock|' \
	-e 's|^socket_group: ""$|socket_group: rumor|' -e 's|^socket_mode: "0600"$|socket_mode: "0660"|' "$src")
for want in 'data_dir: /var/lib/rumor' 'socket: /run/rumor/rumor.sock' 'socket_group: rumor' 'socket_mode: "0660"'; do
	if ! grep -qxF "$want" <<<"$out"; then
		echo "service-config.sh: $src: no line to make into \"$want\" (its default changed?)" >&2
		exit 1
	fi
done
printf '%s\n' "$out"
