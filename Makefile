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

.PHONY: all build tools test test-unit test-rules generate lint fmt bench bench-http run clean

all: build

build:
	$(GO) build -o $(BIN)/sred ./cmd/sred
	$(GO) build -o $(BIN)/srectl ./cmd/srectl
	$(GO) build -o $(BIN)/demo-service ./examples/demo-service

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
	$(PROMTOOL) check rules rules/*.yml examples/sred.rules.yml
	$(PROMTOOL) test rules rules/tests/*.yml examples/tests/*.yml
	$(PROMTOOL) check rules examples/rules/*.rules.yml
	$(PROMTOOL) test rules examples/rules/tests/*.yml

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

# Benchmarks; figures go to docs/benchmarks.md (see "How to run" there).
# Each line runs one package's benchmarks BENCH_COUNT times; benchstat then
# prints the median of the runs (bench.txt). The whole target stays under
# 15 minutes on 2 cores: benchmarks with expensive fixtures run a fixed
# number of iterations (-benchtime Nx) so that the fixture is built once per
# run instead of once per calibration round.
BENCH_COUNT ?= 5
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT := $(BIN)/benchstat

$(BIN)/.benchstat-$(BENCHSTAT_VERSION):
	GOBIN=$(BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	@touch $@
$(BENCHSTAT): $(BIN)/.benchstat-$(BENCHSTAT_VERSION)

# Suites whose every run first stores 100,000 incidents run fewer times.
BENCH_COUNT_SLOW ?= 3

# The suites, in pkg/rulegen (generation of 1,000 SLOs; evaluation of the
# generated rules against their naive form), pkg/receiver (webhook handler
# alone), pkg/app (sred as built by cmd/sred: webhook with every hook and
# goroutine, and GET /metrics with 100,000 stored incidents) and pkg/events
# (live-stream fan-out on the in-process bus). The app suites start a real
# Alertmanager and need PostgreSQL, like the tests.

# $(call bench_pkg,package,pattern,benchtime[,count])
bench_pkg = $(GO) test -run '^$$' -bench '$(2)' -benchmem -benchtime $(3) -count $(or $(4),$(BENCH_COUNT)) -timeout 14m $(1) | tee -a bench.out

bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -eo pipefail -c
bench: tools $(BENCHSTAT)
	@rm -f bench.out
	$(call bench_pkg,./pkg/rulegen,.,1s)
	$(call bench_pkg,./pkg/receiver,BenchmarkWebhook,1000x)
	$(call bench_pkg,./pkg/app,BenchmarkAppWebhook,500x)
	$(call bench_pkg,./pkg/app,BenchmarkMetricsScrape,20x,$(BENCH_COUNT_SLOW))
	$(call bench_pkg,./pkg/events,.,200ms)
	$(BENCHSTAT) bench.out | tee bench.txt
	$(MAKE) --no-print-directory bench-http | tee bench-http.txt

# Webhook ingestion over HTTP as a user meets it (docs/benchmarks.md,
# "Webhook over HTTP"): builds sred, starts it from BENCH_HTTP_CONFIG on a
# temporary SQLite store (or BENCH_HTTP_POSTGRES_URL), posts distinct
# 10-alert Alertmanager deliveries over 8, 32 and 64 keep-alive loopback
# connections for BENCH_HTTP_DURATION each, and prints deliveries/s and
# p50/p99/max beside a no-op handler measured in the same run (about 1 minute).
BENCH_HTTP_CONFIG      ?= examples/sred.yml
BENCH_HTTP_CONNECTIONS ?= 8,32,64
BENCH_HTTP_DURATION    ?= 10s
BENCH_HTTP_POSTGRES_URL ?=
bench-http:
	$(GO) run ./cmd/bench-http --config.file=$(BENCH_HTTP_CONFIG) --connections=$(BENCH_HTTP_CONNECTIONS) \
		--duration=$(BENCH_HTTP_DURATION) $(if $(BENCH_HTTP_POSTGRES_URL),--storage.postgres-url=$(BENCH_HTTP_POSTGRES_URL))

run: build
	$(BIN)/sred --config.file=examples/sred.yml --storage.path=data

clean:
	rm -rf $(BIN) data bench.out bench.txt bench-http.txt
