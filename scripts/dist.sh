#!/usr/bin/env bash
# make dist: release archives and Debian packages in dist/.
#
# For each architecture of ARCHES (default: amd64 arm64) it builds a static
# rumor for linux (CGO_ENABLED=0, -trimpath, the commit in -ldflags as make
# build does, stripped), and makes
#   dist/rumor-VERSION-linux-ARCH.tar.gz   the binary, README.md, the default
#       config and the systemd unit of configs/ (for /usr/local/bin, as make
#       install sets it up), the man page rumor.1 and bash/zsh completions
#   dist/rumor_VERSION_ARCH.deb            the package (packaging/nfpm.yaml,
#       built with nfpm at NFPM, a pinned version run with go run)
# and dist/SHA256SUMS over all of them.
#
# VERSION: the version package's Release when HEAD is tagged v<Release>;
# otherwise Release+git.<git describe --tags --always --dirty>, with "-"
# made ".", e.g. 0.2.0+git.c7af3ac or 0.2.0+git.v0.2.0.3.g1a2b3c4.dirty
# (a valid Debian version that sorts after the release). VERSION=... overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ARCHES=${ARCHES:-amd64 arm64}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0}
COMMIT=${COMMIT-$(git describe --always --dirty --abbrev=40 --match=NONE 2>/dev/null || true)}

release=$(sed -n 's/^const Release = "\(.*\)"$/\1/p' version/version.go)
if [ -z "$release" ]; then
	echo "dist.sh: no const Release in version/version.go" >&2
	exit 1
fi
if [ -z "${VERSION:-}" ]; then
	VERSION=$release
	if [ "$(git describe --tags --exact-match --dirty 2>/dev/null || true)" != "v$release" ]; then
		desc=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
		VERSION=$release+git.${desc//-/.}
	fi
fi
if ! [[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "dist.sh: VERSION $VERSION is not a Debian version (digits first, then letters, digits, . + ~)" >&2
	exit 1
fi
# -s -w: no symbol table or DWARF (half the size; stack traces still name
# functions and lines).
ldflags="-s -w${COMMIT:+ -X github.com/rumor-dev/rumor/version.commit=$COMMIT}"
# Archives with the commit's time and no owner: the same commit, the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# dist/ holds one version's files: the previous run's go.
mkdir -p dist
rm -f dist/rumor-*.tar.gz dist/rumor_*.deb dist/SHA256SUMS
work=$(mktemp -d dist/.work.XXXXXX)
# The package's files, where packaging/nfpm.yaml takes them from.
stage=dist/.stage
trap 'rm -rf "$work" "$stage"' EXIT

# The man page and the completions come from a binary for this host.
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$work/rumor-host" ./cmd/rumor
mkdir -p "$work/common/completions"
"$work/rumor-host" man >"$work/common/rumor.1"
"$work/rumor-host" completion bash >"$work/common/completions/rumor.bash"
"$work/rumor-host" completion zsh >"$work/common/completions/_rumor"
gzip -9n <"$work/common/rumor.1" >"$work/common/rumor.1.gz"
cp README.md "$work/common/"
scripts/service-config.sh >"$work/common/service.yaml"
sed 's|/usr/local/bin/rumor|/usr/bin/rumor|' configs/rumor.service >"$work/common/service.unit"
grep -q '^ExecStart=/usr/bin/rumor ' "$work/common/service.unit" || { echo "dist.sh: configs/rumor.service: no ExecStart=/usr/local/bin/rumor to point at /usr/bin" >&2; exit 1; }

made=()
for arch in $ARCHES; do
	case $arch in amd64 | arm64) ;; *) echo "dist.sh: unknown architecture $arch (want amd64 or arm64)" >&2; exit 1 ;; esac
	name=rumor-$VERSION-linux-$arch
	dir=$work/$arch/$name
	mkdir -p "$dir"
	echo "building $name"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "$ldflags" -o "$dir/rumor" ./cmd/rumor
	cp -r "$work/common/README.md" "$work/common/rumor.1" "$work/common/completions" "$dir/"
	cp configs/rumor.yaml configs/rumor.service "$dir/"
	tar -C "$work/$arch" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
		-cf - "$name" | gzip -9n >"dist/$name.tar.gz"
	made+=("$name.tar.gz")

	# The package's files: the binary, the service's config and unit.
	rm -rf "$stage"
	mkdir -p "$stage"
	cp -r "$dir/rumor" "$work/common/rumor.1.gz" "$work/common/completions" "$work/common/README.md" "$stage/"
	cp "$work/common/service.yaml" "$stage/rumor.yaml"
	cp "$work/common/service.unit" "$stage/rumor.service"
	deb=rumor_${VERSION}_$arch.deb
	RUMOR_VERSION=$VERSION RUMOR_ARCH=$arch \
		"$GO" run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target "dist/$deb" >/dev/null
	made+=("$deb")
done
(cd dist && sha256sum "${made[@]}" >SHA256SUMS)
echo "dist/ (version $VERSION):"
(cd dist && ls -l "${made[@]}" SHA256SUMS)
