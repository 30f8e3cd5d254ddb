#!/usr/bin/env bash
# make dist-test: installs the amd64 package (make dist) in a clean Debian
# bookworm chroot and checks it there, as a host would use it:
#   dpkg -i            the maintainer scripts make the system user and group
#                      rumor and /var/lib/rumor
#   rumor agent        as user rumor with the package's /etc/rumor/rumor.yaml,
#                      as the unit runs it (in the background; listening on a
#                      free 127.0.0.1 port, metrics off: the chroot shares
#                      this host's network)
#   rumor status       as a user in group rumor, through /run/rumor/rumor.sock
#   rumor version, man -w rumor, the completions
#   dpkg --purge       removes the files, the config and the state
# The chroot's base (debootstrap --variant=minbase, with adduser and man-db,
# from http://deb.debian.org/debian) is cached in .cache/dist-test/ and
# copied for every run, so only the first run downloads it. Mounts and
# processes are cleaned up on every exit path. Needs root (debootstrap,
# chroot, mount): elsewhere it says so and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The package: $1, or the one make dist left in dist/.
deb=${1:-$(ls dist/rumor_*_amd64.deb 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
cache=.cache/dist-test
base=$cache/$SUITE-amd64

if [ "$(id -u)" != 0 ]; then
	echo "########################################################################" >&2
	echo "dist-test: needs root (debootstrap, chroot, mount): NOT RUN" >&2
	echo "########################################################################" >&2
	exit 1
fi
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
	echo "dist-test: no package ${deb:-dist/rumor_*_amd64.deb} (make dist)" >&2
	exit 1
fi
if ! command -v debootstrap >/dev/null; then
	echo "dist-test: installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null; } ||
		{ echo "dist-test: could not install debootstrap" >&2; exit 1; }
fi
mkdir -p "$cache"
if [ ! -f "$base/.complete" ]; then
	echo "dist-test: debootstrap $SUITE into $base (once; later runs reuse it)"
	rm -rf "$base" "$base.new"
	debootstrap --variant=minbase --include=adduser,man-db "$SUITE" "$base.new" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
		{ tail -20 "$cache/debootstrap.log" >&2; echo "dist-test: debootstrap failed (log: $cache/debootstrap.log)" >&2; exit 1; }
	rm -rf "$base.new/var/cache/apt/archives/"*.deb
	touch "$base.new/.complete"
	mv "$base.new" "$base"
fi

root=$(mktemp -d "$cache/run.XXXXXX")
root=$(cd "$root" && pwd)
agent=
cleanup() {
	set +e
	if [ -n "$agent" ] && kill -0 "$agent" 2>/dev/null; then
		kill -TERM "$agent"
		for _ in $(seq 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$agent" 2>/dev/null
		wait "$agent" 2>/dev/null
	fi
	if mountpoint -q "$root/proc"; then umount "$root/proc" || umount -l "$root/proc"; fi
	if mountpoint -q "$root/proc"; then
		echo "dist-test: $root/proc is still mounted: not removing $root" >&2
	else
		rm -rf "$root"
	fi
}
trap cleanup EXIT
cp -a "$base/." "$root/"
mount -t proc proc "$root/proc"
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$@"; }
fail() { echo "dist-test: FAIL: $*" >&2; [ -f "$root/tmp/agent.log" ] && { echo "--- agent log:" >&2; tail -20 "$root/tmp/agent.log" >&2; }; exit 1; }

cp "$deb" "$root/tmp/rumor.deb"
in_root "$root" dpkg -i /tmp/rumor.deb || fail "dpkg -i $(basename "$deb")"
in_root "$root" getent passwd rumor >/dev/null || fail "postinst made no user rumor"
uid=$(in_root "$root" id -u rumor) gid=$(in_root "$root" id -g rumor)
got=$(stat -c %u:%g:%a "$root/var/lib/rumor") || fail "postinst made no /var/lib/rumor"
[ "$got" = "$uid:$gid:700" ] || fail "/var/lib/rumor is $got (uid:gid:mode), want $uid:$gid:700 (rumor's)"

# What systemd's RuntimeDirectory= would make; then the agent as the unit runs it.
install -d -o "$uid" -g "$gid" -m 0750 "$root/run/rumor"
# (env and chroot exec: $! is the agent's pid.)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot --userspec=rumor:rumor --groups=rumor "$root" \
	/usr/bin/rumor agent --config /etc/rumor/rumor.yaml --listen /ip4/127.0.0.1/tcp/0 --metrics-addr= \
	>"$root/tmp/agent.log" 2>&1 &
agent=$!

# A user of group rumor reaches it through the socket.
in_root "$root" useradd --create-home --groups rumor alice
status=
for _ in $(seq 300); do
	kill -0 "$agent" 2>/dev/null || fail "the agent exited"
	if status=$(in_root --userspec=alice:alice --groups=rumor "$root" /usr/bin/rumor --socket /run/rumor/rumor.sock status 2>&1); then
		break
	fi
	status=
	sleep 0.1
done
[ -n "$status" ] || fail "rumor status did not answer within 30 s"
grep -q '^cluster: *default$' <<<"$status" || fail "rumor status: no cluster default in:
$status"
echo "rumor status (as alice, in group rumor):"
sed 's/^/    /' <<<"$status"

want=$(dpkg-deb -f "$deb" Version)
ver=$(in_root "$root" /usr/bin/rumor version) || fail "rumor version"
grep -q "^version: *${want%%+*}" <<<"$ver" || fail "rumor version says:
$ver
want version ${want%%+*}"
man=$(in_root "$root" man -w rumor) || fail "man -w rumor"
[ "$man" = /usr/share/man/man1/rumor.1.gz ] || fail "man -w rumor = $man"
in_root "$root" sh -c 'man rumor 2>/dev/null | grep -q "rumor agent"' || fail "man rumor does not render"
for f in /usr/share/bash-completion/completions/rumor /usr/share/zsh/vendor-completions/_rumor /lib/systemd/system/rumor.service; do
	[ -s "$root$f" ] || fail "no $f"
done
grep -q '^ExecStart=/usr/bin/rumor agent' "$root/lib/systemd/system/rumor.service" || fail "the unit does not start /usr/bin/rumor"

# SIGTERM, as systemd's stop would send (the unit's KillSignal is SIGINT,
# which a background job of a script may have ignored; both leave gracefully).
kill -TERM "$agent"
for _ in $(seq 100); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
kill -0 "$agent" 2>/dev/null && fail "the agent did not stop within 10 s of SIGTERM"
wait "$agent" || fail "the agent exited with status $? on SIGTERM"
agent=
in_root "$root" dpkg --purge rumor >/dev/null || fail "dpkg --purge rumor"
for f in /usr/bin/rumor /etc/rumor /var/lib/rumor; do
	[ ! -e "$root$f" ] || fail "$f is left after dpkg --purge"
done
echo "dist-test: OK ($(basename "$deb") in a clean $SUITE chroot: installed, agent answered, version, man page, purged)"
