# ROOTUIP SRE — build, test and run.
#
#   make run     start sred with examples/sred.yml on embedded SQLite (data/)
#   make test    build the pinned tools and run every test
#
# Tools are pinned and built from source into ./bin with `go install`; no
# prebuilt binaries are downloaded.

GO        ?= go
BIN       := $(CURDIR)/bin
GOFLAGS   ?=

PROMETHEUS_VERSION   := v0.316.0
ALERTMANAGER_VERSION := v0.28.1

PROMTOOL     := $(BIN)/promtool
PROMETHEUS   := $(BIN)/prometheus
ALERTMANAGER := $(BIN)/alertmanager

export SRE_PROMTOOL     := $(PROMTOOL)
export SRE_PROMETHEUS   := $(PROMETHEUS)
export SRE_ALERTMANAGER := $(ALERTMANAGER)

# Go test timeout for the whole suite (end-to-end tests run real servers).
TEST_TIMEOUT ?= 30m

.PHONY: all build tools test test-unit test-rules generate lint fmt bench run clean

all: build

build:
	$(GO) build -o $(BIN)/sred ./cmd/sred
	$(GO) build -o $(BIN)/srectl ./cmd/srectl

# --- pinned tools -----------------------------------------------------------
tools: $(PROMTOOL) $(PROMETHEUS) $(ALERTMANAGER)

$(BIN)/.promtool-$(PROMETHEUS_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)
	@touch $@
$(PROMTOOL): $(BIN)/.promtool-$(PROMETHEUS_VERSION)

$(BIN)/.prometheus-$(PROMETHEUS_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)
	@touch $@
$(PROMETHEUS): $(BIN)/.prometheus-$(PROMETHEUS_VERSION)

$(BIN)/.alertmanager-$(ALERTMANAGER_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/prometheus/alertmanager/cmd/alertmanager@$(ALERTMANAGER_VERSION)
	@touch $@
$(ALERTMANAGER): $(BIN)/.alertmanager-$(ALERTMANAGER_VERSION)

# --- tests ------------------------------------------------------------------
test: tools test-rules test-unit

# The committed rules must pass the pinned promtool, and their unit tests must pass.
test-rules: tools
	$(PROMTOOL) check rules rules/*.yml
	$(PROMTOOL) test rules rules/tests/*.yml

test-unit: tools
	$(GO) test $(GOFLAGS) -count=1 -timeout $(TEST_TIMEOUT) ./...

# --- generated files --------------------------------------------------------
# Regenerates everything that is generated and committed.
generate:
	$(GO) run ./cmd/srectl generate -i examples/slos -o rules --tests rules/tests
	$(GO) run ./cmd/srectl dashboards -o dashboards

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks; figures go to docs/benchmarks.md.
BENCH_TIME ?= 1s
BENCH_COUNT ?= 5
bench: tools
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) -count $(BENCH_COUNT) ./... | tee bench.out

run: build
	$(BIN)/sred --config.file=examples/sred.yml --storage.path=data

clean:
	rm -rf $(BIN) data bench.out
