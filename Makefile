# rumor: gossip-based state sync. `make run` starts one agent; `make test`
# runs everything CI checks.
GO      ?= go
BIN     := bin/rumor
CONFIG  ?= configs/rumor.yaml
PKGS    := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run demo test test-short lint fuzz bench bench-short clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rumor

run: build
	$(BIN) agent --config $(CONFIG)

# Three agents on 127.0.0.1 joined together, and a scripted show of every namespace.
demo: build
	./scripts/demo.sh

# Everything CI checks: formatting, vet, staticcheck, the race-enabled test
# suite (which includes the fuzz seed corpora and the end-to-end binary
# test), then the short benchmark.
test: lint
	$(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(MAKE) bench-short

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# Coverage-guided fuzzing of the decoders (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

bench:
	$(GO) run ./cmd/rumor-bench -json bench.json

bench-short:
	$(GO) run ./cmd/rumor-bench -short

clean:
	rm -rf bin data .demo bench.json
