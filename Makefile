# rumor: gossip-based state sync. `make run` starts one agent; `make test`
# runs everything CI checks; `make dist` builds release archives and Debian
# packages in dist/, and `make dist-test` installs the package in a clean
# Debian chroot and checks it (root only).
GO      ?= go
BIN     := bin/rumor
CONFIG  ?= configs/rumor.yaml
PKGS    := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The commit the binary reports (rumor version, rumor status): HEAD's hash,
# with -dirty for a modified work tree. go build records it by itself too,
# but not in a git worktree or with -buildvcs=false; COMMIT= leaves it to go.
COMMIT  ?= $(shell git describe --always --dirty --abbrev=40 --match=NONE 2>/dev/null)
LDFLAGS := $(if $(COMMIT),-X github.com/rumor-dev/rumor/version.commit=$(COMMIT))

.PHONY: all build run demo test test-deps test-short lint fuzz bench bench-short chaos sim sim-scale clean dist dist-test

all: build

# A static binary (no cgo): one file to copy to every host, and no libc
# mapped in (about 1.4 MB less resident memory; rumor-bench figure 4).
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rumor

run: build
	$(BIN) agent --config $(CONFIG)

# Three agents on 127.0.0.1 joined together, and a scripted show of every namespace.
demo: build
	./scripts/demo.sh

# The tests CI checks: formatting, vet, staticcheck, the race-enabled test
# suite (which includes the fuzz seed corpora, the end-to-end binary test,
# the simulated scenarios of up to 16 agents and the real-TCP ones), every
# simulated scenario without the race detector, and the Python client's
# tests. .ci/run then runs the short forms of the longer runs (bench-short,
# dist-test, chaos, sim-scale), so that make test stays under 10 minutes.
test: lint test-deps
	$(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(MAKE) sim
	$(MAKE) test-python

# The Python client (clients/python) against real agents (one, a TCP-API
# one, three joined on 127.0.0.1), with pytest from Debian's python3-pytest
# (PyPI is not needed): installed with apt-get when missing and root. PYTHON
# is an interpreter that has pytest (the first of /usr/bin/python3, python3).
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do $$p -c 'import pytest' >/dev/null 2>&1 && { echo $$p; break; }; done)
.PHONY: test-python
test-python: build
	@py="$(PYTHON)"; if [ -z "$$py" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-pytest (the Python client's tests)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq python3-pytest >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-pytest >/dev/null 2>&1; } || \
	    { echo "could not install python3-pytest"; exit 1; }; \
	    py=/usr/bin/python3; \
	  else echo "no python3 with pytest, and not root: apt-get install python3-pytest"; exit 1; fi; \
	fi; \
	cd clients/python && RUMOR_BIN=$(CURDIR)/$(BIN) $$py -m pytest -q -p no:cacheprovider

# The simulated cluster (internal/sim): every scenario of
# internal/sim/testdata/scenarios, up to 50 agents, in virtual time.
sim:
	GO=$(GO) ./scripts/sim.sh

# Many agents in virtual time (docs/scale.md): SIM_N agents in three
# regions (5 ms within, 60-150 ms between, 0.5 % loss): cold start,
# detection of 10 killed agents, propagation of 50 writes, a region's
# partition and heal, idle messages and bytes per agent, memory per agent;
# prints a table. TestScale skips itself without -sim.scale, so make test
# and make sim never run it; .ci/run runs it with SIM_N=30. The default,
# 300, takes about half an hour and 12 GB at its peak (about 40 MB per
# agent in the partition; 1000 would need about 40 GB). SIM_FLAGS passes
# more flags, e.g. SIM_FLAGS="-sim.scale.idle=10m -sim.scale.skip=partition".
SIM_N ?= 300
sim-scale:
	GO=$(GO) SIM_N=$(SIM_N) SIM_FLAGS="$(SIM_FLAGS)" ./scripts/sim-scale.sh

# Headless Chromium for the status page test (agent TestStatusPageBrowser),
# from Debian when run as root; without it that test skips, saying why.
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (status page test)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: TestStatusPageBrowser will skip"; \
	  else echo "no chromium and not root: TestStatusPageBrowser will skip"; fi; }

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# Coverage-guided fuzzing of the decoders, the config loader and the local
# API's request handling (FUZZTIME per target, one at a time).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./antientropy -run '^$$' -fuzz FuzzRespond -fuzztime $(FUZZTIME)
	$(GO) test ./antientropy -run '^$$' -fuzz FuzzAnswerKey -fuzztime $(FUZZTIME)
	$(GO) test ./store -run '^$$' -fuzz FuzzDecodeEntry -fuzztime $(FUZZTIME)
	$(GO) test ./config -run '^$$' -fuzz FuzzLoadConfig -fuzztime $(FUZZTIME)
	$(GO) test ./rpc/httpapi -run '^$$' -fuzz FuzzServerRequest -fuzztime $(FUZZTIME)

# rumor's figures (cluster sizes 10 and 30, in one process with the bare
# GossipSub floor beside them, and as agent processes, as the peers are
# measured; membership cost at 10, 30 and 100), then propagation with 100
# agents in one process (heartbeat 5 s, which stretches the failure
# detector's timings fivefold, as the figures before the probe-based
# detector were taken), then the same method against Redis pub/sub and
# memberlist, and the work queue (figure 11) against a Redis list (BLMOVE).
bench:
	$(GO) run ./cmd/rumor-bench -n 10,30 -json bench.json
	$(GO) run ./cmd/rumor-bench -phases 1 -n 100 -proc-n 0 -heartbeat 5s -spacing-min 100ms -spacing-max 200ms -form-timeout 300s -json bench-n100.json
	$(MAKE) bench-peers PEERS_RUMOR_JSON=bench.json

bench-short:
	$(GO) run ./cmd/rumor-bench -short

# Five agents as separate hosts in network namespaces (../shared/netlab),
# partitions, kill -9, pauses and clock offsets in seeded random order, and
# a checker over the recorded history (see README, Guarantees under
# failure). About 3 minutes; LONG=1 runs 200 cycles. Needs root: elsewhere
# it says loudly that it skipped.
chaos:
	GO=$(GO) ./scripts/chaos.sh

clean:
	rm -rf bin data .demo bench.json bench-n100.json bench-peers.json chaos.json dist

# Release files in dist/ (scripts/dist.sh): for each of DIST_ARCHES a static,
# stripped linux binary (CGO_ENABLED=0, -trimpath, the commit as make build
# sets it) in rumor-VERSION-linux-ARCH.tar.gz with README.md, configs/'s
# rumor.yaml and rumor.service, the man page rumor.1 (from the hidden
# `rumor man`) and bash/zsh completions; the Debian package
# rumor_VERSION_ARCH.deb (packaging/nfpm.yaml, with nfpm at NFPM); and
# SHA256SUMS. VERSION is version.Release when HEAD is tagged v<Release>,
# else Release+git.<git describe --tags --always --dirty> ("-" made "."),
# e.g. 0.2.0+git.c7af3ac; VERSION=... overrides it.
DIST_ARCHES ?= amd64 arm64
NFPM ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
dist:
	GO=$(GO) ARCHES="$(DIST_ARCHES)" NFPM=$(NFPM) COMMIT=$(COMMIT) $(if $(VERSION),VERSION=$(VERSION)) ./scripts/dist.sh

# The amd64 package installed in a clean Debian bookworm chroot
# (debootstrap, cached in .cache/dist-test): the agent started as the unit
# would, rumor status as a member of group rumor, rumor version, the man
# page, then a purge. Needs root: elsewhere it says so and fails. Installs
# debootstrap when missing.
dist-test:
	$(MAKE) dist DIST_ARCHES=amd64
	./scripts/dist-test.sh

# The peers a rumor user would otherwise pick, measured with rumor-bench's
# method and payloads on this machine: Redis pub/sub, and a Redis list as
# a work queue with BLMOVE, figure 11's counterpart (both on a throw-away
# redis-server on a free 127.0.0.1 port, persistence off, stopped on every
# exit path), and hashicorp/memberlist (nodes in one process). bench/peers is
# its own Go module, so the agent never depends on memberlist. The table gets
# a rumor column when bench.json (from `make bench`) exists, or from
# PEERS_RUMOR_JSON=path. SHORT=1 for the quick form; PEERS_FLAGS for more
# flags (`cd bench/peers && go run . -h`). Writes bench-peers.json.
PEERS_RUMOR_JSON ?= $(wildcard bench.json)
.PHONY: bench-peers
bench-peers:
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	GO="$(GO)" ./bench/peers/run.sh $(if $(SHORT),-short) $(if $(PEERS_RUMOR_JSON),-rumor $(abspath $(PEERS_RUMOR_JSON))) -json $(CURDIR)/bench-peers.json $(PEERS_FLAGS)

# Install rumor as a service: the binary to $(PREFIX)/bin, a config to
# /etc/rumor/rumor.yaml unless one is there (scripts/service-config.sh, the
# package's too: configs/rumor.yaml with the
# service's data_dir /var/lib/rumor and socket /run/rumor/rumor.sock, open
# to group rumor: socket_group rumor, socket_mode 0660), and
# configs/rumor.service to /etc/systemd/system when that directory exists.
# DESTDIR stages it all under another root (packaging, tests). Then: create
# the rumor user (useradd --system ... rumor, see the unit) and
# systemctl daemon-reload && systemctl enable --now rumor.
PREFIX  ?= /usr/local
DESTDIR ?=
.PHONY: install
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/rumor
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/rumor
	@if [ -e $(DESTDIR)/etc/rumor/rumor.yaml ]; then \
	  echo "keeping $(DESTDIR)/etc/rumor/rumor.yaml (check it: rumor config check /etc/rumor/rumor.yaml)"; \
	else \
	  scripts/service-config.sh > $(DESTDIR)/etc/rumor/rumor.yaml.tmp && \
	  chmod 0644 $(DESTDIR)/etc/rumor/rumor.yaml.tmp && \
	  mv $(DESTDIR)/etc/rumor/rumor.yaml.tmp $(DESTDIR)/etc/rumor/rumor.yaml && \
	  echo "installed $(DESTDIR)/etc/rumor/rumor.yaml"; \
	fi
	@if [ -d $(DESTDIR)/etc/systemd/system ]; then \
	  sed 's|/usr/local/bin/rumor|$(PREFIX)/bin/rumor|' configs/rumor.service > $(DESTDIR)/etc/systemd/system/rumor.service && \
	  chmod 0644 $(DESTDIR)/etc/systemd/system/rumor.service && \
	  echo "installed $(DESTDIR)/etc/systemd/system/rumor.service: systemctl daemon-reload && systemctl enable --now rumor"; \
	else echo "no $(DESTDIR)/etc/systemd/system: unit not installed (it is configs/rumor.service)"; fi
	@if [ -z "$(DESTDIR)" ] && ! id rumor >/dev/null 2>&1; then \
	  echo "no user rumor: the unit runs as rumor; create it: useradd --system --no-create-home --home-dir /var/lib/rumor --shell /usr/sbin/nologin rumor"; fi
