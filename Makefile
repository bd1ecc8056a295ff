# ROOTUIP SRE — build, test and run.
#
#   make run     start sred with examples/sred.yml on embedded SQLite (data/)
#   make demo    the demo service, Prometheus, Alertmanager and sred on 127.0.0.1
#   make test    build the pinned tools and run every test
#
# Tools are pinned and built from source with `go install`; no prebuilt
# binaries are downloaded. Each is built once into a cache shared by every
# clone on the machine (TOOLS_CACHE) and linked into ./bin; each target
# builds only the tools it needs (`make run` none).

GO        ?= go
BIN       := $(CURDIR)/bin
GOFLAGS   ?=

PROMETHEUS_VERSION   := v0.316.0
ALERTMANAGER_VERSION := v0.28.1
NODE_EXPORTER_VERSION := v1.12.1
# Prometheus without the service-discovery plugins (cloud SDKs) that these
# tools never use: file_sd and http_sd remain (plugins/minimum.go of the
# Prometheus module). promtool imports the Kubernetes SD itself, so the tag
# spares it less.
PROMETHEUS_TAGS      := remove_all_sd

# Shared by every clone on the machine; override to build elsewhere.
TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rootuip-sre/tools

PROMTOOL     := $(BIN)/promtool
PROMETHEUS   := $(BIN)/prometheus
ALERTMANAGER := $(BIN)/alertmanager
NODE_EXPORTER := $(BIN)/node_exporter

export SRE_PROMTOOL     := $(PROMTOOL)
export SRE_PROMETHEUS   := $(PROMETHEUS)
export SRE_ALERTMANAGER := $(ALERTMANAGER)
export SRE_NODE_EXPORTER := $(NODE_EXPORTER)

# Go test timeout for the whole suite (end-to-end tests run real servers).
TEST_TIMEOUT ?= 30m

.PHONY: all build tools deps-wrk deps-pgbench test test-unit test-rules generate lint fmt bench bench-http bench-generate bench-retention fuzz run demo demo-break demo-heal clean

all: build

build: $(BIN)/sred $(BIN)/srectl $(BIN)/demo-service $(BIN)/demo

# What `sred --version`, `srectl --version`, sred's first log line and its
# build_info metric say: the checkout's tag or commit (git describe), its
# commit and branch. No build date: a link that changes at every build
# would make every `make run` link again.
VERSION_PKG := github.com/prometheus/common/version
BUILD_VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
BUILD_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
VERSION_LDFLAGS := -X $(VERSION_PKG).Version=$(BUILD_VERSION) -X $(VERSION_PKG).Revision=$(BUILD_REVISION) -X $(VERSION_PKG).Branch=$(BUILD_BRANCH)

# Always handed to go build, which knows what is up to date.
.PHONY: $(BIN)/sred $(BIN)/srectl $(BIN)/demo-service $(BIN)/demo
$(BIN)/sred:
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $@ ./cmd/sred
$(BIN)/srectl:
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $@ ./cmd/srectl
$(BIN)/demo-service:
	$(GO) build -o $@ ./examples/demo-service
$(BIN)/demo:
	$(GO) build -o $@ ./examples/demo

# --- pinned tools -----------------------------------------------------------
tools: $(PROMTOOL) $(PROMETHEUS) $(ALERTMANAGER) $(NODE_EXPORTER)

# $(call tool,name,package,version,tags): builds name into
# $(TOOLS_CACHE)/name-version[-tags]/ once (flock: a second clone building
# at the same time waits for the first and reuses its binary), and links it
# into ./bin.
define tool
$(TOOLS_CACHE)/$(1)-$(3)$(if $(4),-$(4))/$(1):
	@mkdir -p $$(@D)
	@echo "building $(1) $(3) once for this machine into $$(@D) (minutes: README.md, Build times); if another clone is building it, waiting for that build"
	flock $$(@D).lock sh -c 'test -x $$@ || GOBIN=$$(@D) $(GO) install $(if $(4),-tags $(4)) $(2)@$(3)'
$(BIN)/$(1): $(TOOLS_CACHE)/$(1)-$(3)$(if $(4),-$(4))/$(1)
	@mkdir -p $(BIN)
	ln -sf $$< $$@
endef

$(eval $(call tool,promtool,github.com/prometheus/prometheus/cmd/promtool,$(PROMETHEUS_VERSION),$(PROMETHEUS_TAGS)))
$(eval $(call tool,prometheus,github.com/prometheus/prometheus/cmd/prometheus,$(PROMETHEUS_VERSION),$(PROMETHEUS_TAGS)))
$(eval $(call tool,alertmanager,github.com/prometheus/alertmanager/cmd/alertmanager,$(ALERTMANAGER_VERSION),))
# The healing end-to-end test evaluates the node rules on its metrics.
$(eval $(call tool,node_exporter,github.com/prometheus/node_exporter,$(NODE_EXPORTER_VERSION),))

# The targets above are absolute ($(BIN) is $(CURDIR)/bin, which the tests
# are given); the relative names build the same files: `make bin/promtool`.
bin/%: $(BIN)/% ;

# --- tests ------------------------------------------------------------------
test: tools test-rules test-unit

# The committed rules must pass the pinned promtool, and their unit tests must pass.
test-rules: tools
	$(PROMTOOL) check rules rules/*.yml examples/sred.rules.yml
	$(PROMTOOL) test rules rules/tests/*.yml examples/tests/*.yml
	$(PROMTOOL) check rules examples/rules/*.rules.yml examples/rules/mapping/*.rules.yml
	$(PROMTOOL) test rules examples/rules/tests/*.yml

# The SQLite -> PostgreSQL move of 100,000 incidents runs without the race
# detector (under it the test moves 10,000: pkg/escalation/volume_*_test.go).
test-unit: tools deps-wrk deps-pgbench
	$(GO) test $(GOFLAGS) -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test $(GOFLAGS) -count=1 -timeout $(TEST_TIMEOUT) -run '^TestMigrateSQLiteToPostgres$$' ./pkg/escalation/

# wrk (Debian's package) is the load generator of bench-http, and
# cmd/internal/benchenv's test runs its script through it: installed with
# apt-get when missing, as .ci/run installs its Debian packages.
deps-wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# pgbench (in Debian's postgresql-client) writes bench-http's PostgreSQL
# ceiling, and cmd/bench-http's test runs it: installed with apt-get when
# missing.
deps-pgbench:
	@command -v pgbench >/dev/null 2>&1 || { echo "installing pgbench (apt-get postgresql-client)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }

# Fuzz targets (docs/security.md): `make test` runs each on its seed corpus
# (f.Add seeds and testdata/fuzz/); `make fuzz` fuzzes each for FUZZTIME.
FUZZTIME ?= 1m
FUZZ_TARGETS := ./pkg/receiver:FuzzDecodeRequest ./pkg/config:FuzzLoad ./pkg/slo:FuzzParse \
	./pkg/escalation:FuzzParseMatchers ./pkg/runbook:FuzzTemplate ./pkg/runbook:FuzzParse ./pkg/scaling:FuzzParse ./pkg/rollout:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

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

$(eval $(call tool,benchstat,golang.org/x/perf/cmd/benchstat,$(BENCHSTAT_VERSION),))

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
	$(call bench_pkg,./pkg/cli,BenchmarkGenerateFiles,3x)
	$(call bench_pkg,./pkg/receiver,BenchmarkWebhook,1000x)
	$(call bench_pkg,./pkg/incident,BenchmarkResolveLargeGroup,3x,3)
	$(call bench_pkg,./pkg/app,BenchmarkAppWebhook,500x)
	$(call bench_pkg,./pkg/app,BenchmarkMetricsScrape,20x,$(BENCH_COUNT_SLOW))
	$(call bench_pkg,./pkg/events,.,200ms)
	$(call bench_pkg,./pkg/stream,BenchmarkWSBurst,3x,1)
	$(call bench_pkg,./pkg/retention,BenchmarkCompactBatch,20x,3)
	$(BENCHSTAT) bench.out | tee bench.txt
	$(MAKE) --no-print-directory bench-http | tee bench-http.txt
	$(MAKE) --no-print-directory bench-generate | tee bench-generate.txt

# Webhook ingestion over HTTP as a user meets it (docs/benchmarks.md,
# "Webhook over HTTP"): builds sred, starts it from BENCH_HTTP_CONFIG, posts
# distinct 10-alert Alertmanager deliveries (a new group per request) over
# 8, 32 and 64 keep-alive loopback connections for BENCH_HTTP_DURATION each,
# and prints deliveries/s, p50/p99/max, sred's CPU seconds per 1,000
# deliveries and the load generator's own CPU beside a no-op handler
# measured in the same run with the same generator; after every step it
# checks that sred stored at least as many of the step's deliveries as it
# answered with 2xx. The closed-loop steps are driven by wrk (Debian's
# package, installed with apt-get when missing) running
# cmd/internal/benchenv/webhook.lua, a few hundredths of a core where the
# Go client of cmd/bench-http took half of one of the two cores sred runs
# on (BENCH_HTTP_DRIVER=go selects that client). Every step runs against
# sred with the configuration's notification endpoints as they are
# (failing: examples/sred.yml points them at 127.0.0.1:9) and with them
# pointing at a local sink (working), each on a fresh store, for every set-up
# of BENCH_HTTP_SETUPS: SQLite, one sred on PostgreSQL
# (BENCH_HTTP_POSTGRES_URL, a fresh schema each) and two sred replicas behind
# a round-robin load balancer. Then, for the tail goal, each number of
# connections again at a fixed BENCH_HTTP_TAIL_RATE deliveries/s (open
# loop, the Go client, the first of BENCH_HTTP_CHANNELS, a fresh sred
# each, after the steps of both channel set-ups; 0 skips it):
# the summary prints p99 at 64 over p99 at 8 both ways (about 9 minutes in
# all). BENCH_HTTP_SETUPS=sqlite runs without PostgreSQL. BENCH_HTTP_RATE=1000
# offers 1,000 deliveries/s shared by the connections (open loop, latency
# from when each was due, the Go client) in every step instead. After the
# steps of each PostgreSQL set-up, BENCH_HTTP_PGBENCH (pgbench, from
# PostgreSQL's client; empty skips it) writes the rows that its last step's
# deliveries wrote, one transaction per delivery, at every number of
# connections: PostgreSQL's own ceiling for those writes on the machine,
# printed as pgbench rows beside sred's, each followed by a pgbench-setN row
# writing the same rows set-based, BENCH_HTTP_PGBENCH_SET deliveries a
# transaction in one statement per table (0 skips it); after the SQLite
# set-up's, a replay row does the same on SQLite (one connection, sred's
# settings).
BENCH_HTTP_RATE        ?= 0
BENCH_HTTP_TAIL_RATE   ?= 400
BENCH_HTTP_DRIVER      ?=
BENCH_HTTP_CHANNELS    ?= failing,working
BENCH_HTTP_CONFIG      ?= examples/sred.yml
BENCH_HTTP_CONNECTIONS ?= 8,32,64
BENCH_HTTP_DURATION    ?= 10s
BENCH_HTTP_SETUPS      ?= sqlite,postgres,postgres-2
BENCH_HTTP_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
BENCH_HTTP_PGBENCH     ?= pgbench
BENCH_HTTP_PGBENCH_SET ?= 16
bench-http: deps-wrk $(if $(BENCH_HTTP_PGBENCH),deps-pgbench)
	$(GO) run ./cmd/bench-http --config.file=$(BENCH_HTTP_CONFIG) --connections=$(BENCH_HTTP_CONNECTIONS) \
		--duration=$(BENCH_HTTP_DURATION) --channels=$(BENCH_HTTP_CHANNELS) --setups=$(BENCH_HTTP_SETUPS) \
		--storage.postgres-url='$(BENCH_HTTP_POSTGRES_URL)' --rate=$(BENCH_HTTP_RATE) --tail-rate=$(BENCH_HTTP_TAIL_RATE) \
		--pgbench='$(BENCH_HTTP_PGBENCH)' $(if $(BENCH_HTTP_PGBENCH_SET),--pgbench.set=$(BENCH_HTTP_PGBENCH_SET)) \
		$(if $(BENCH_HTTP_DRIVER),--driver=$(BENCH_HTTP_DRIVER))

# Retention compaction under webhook load (docs/benchmarks.md, "Retention
# compaction under webhook load"): for SQLite and PostgreSQL, seeds a store
# with 1,000,000 rows of incidents resolved 30 days ago (generated inside
# the database), then alternately runs sred on a copy of it with retention
# off and with resolved_incidents: 24h (compaction deleting from the start)
# under a steady webhook load, and prints p50/p99 and the p99 ratio per
# round with the load average (estimated under 5 minutes on two idle cores).
BENCH_RETENTION_ROWS     ?= 1000000
BENCH_RETENTION_RATE     ?= 100
BENCH_RETENTION_DURATION ?= 10s
BENCH_RETENTION_ROUNDS   ?= 2
bench-retention:
	$(GO) run ./cmd/bench-retention --seed-rows=$(BENCH_RETENTION_ROWS) --rate=$(BENCH_RETENTION_RATE) \
		--duration=$(BENCH_RETENTION_DURATION) --rounds=$(BENCH_RETENTION_ROUNDS) \
		'--postgres-url=$(or $(SRE_TEST_POSTGRES_URL),postgres://postgres@127.0.0.1:5432/test?sslmode=disable)'

# srectl generate beside Sloth (docs/benchmarks.md, "Generation beside
# Sloth"): writes BENCH_GENERATE_SLOS SLOs (two per file) in Sloth's format
# and in the native one, runs sloth generate and srectl generate (cost
# estimate on) in alternation under /usr/bin/time -v, BENCH_GENERATE_RUNS
# times each, and prints median wall and CPU time, peak memory and the ratio
# to Sloth. Sloth is built from source into the tool cache like the other
# pinned tools, never into the repository.
SLOTH_VERSION        := v0.16.0
SLOTH                := $(BIN)/sloth
BENCH_GENERATE_SLOS  ?= 1000
BENCH_GENERATE_RUNS  ?= 5
$(eval $(call tool,sloth,github.com/slok/sloth/cmd/sloth,$(SLOTH_VERSION),))

bench-generate: $(SLOTH) $(BIN)/srectl
	$(GO) run ./cmd/bench-generate --sloth=$(SLOTH) --srectl=$(BIN)/srectl \
		--slos=$(BENCH_GENERATE_SLOS) --runs=$(BENCH_GENERATE_RUNS)

# sred alone, without Prometheus: examples/sred.yml turns the Watchdog check
# on, so a CRITICAL "alerting pipeline broken" incident opens after 10
# minutes (README says so before the tour; `make demo` runs the whole loop).
# --web.no-auth makes anyone who reaches the port an admin: it listens on
# the loopback interface only, as `make demo` does.
# SRED_PORT moves it when 8095 is taken (srectl then needs --sred.url or
# SRECTL_SRED_URL); the address stays on the loopback interface.
# SRED_CONFIG names another configuration: a copy of examples/sred.yml
# kept in examples/, where its relative paths (secrets/, slos/, ...) resolve.
# SRED_DATA is the storage directory (--storage.path): a second `make run`
# at the same time needs another one (and another SRED_PORT).
SRED_PORT ?= 8095
SRED_CONFIG ?= examples/sred.yml
SRED_DATA ?= data
run: $(BIN)/sred $(BIN)/srectl
	$(BIN)/sred --config.file=$(SRED_CONFIG) --storage.path=$(SRED_DATA) --web.listen-address=127.0.0.1:$(SRED_PORT) --web.no-auth

# The whole loop on 127.0.0.1 (examples/demo); Ctrl-C stops it. DEMO_FLAGS
# go to `demo up`: --sred.listen-address=127.0.0.1:8096 and the like move
# a program whose port is taken.
DEMO_FLAGS ?=
demo: build $(PROMETHEUS) $(ALERTMANAGER)
	$(BIN)/demo up --bin.dir=$(BIN) --prometheus=$(PROMETHEUS) --alertmanager=$(ALERTMANAGER) $(DEMO_FLAGS)

demo-break: $(BIN)/demo
	$(BIN)/demo break

demo-heal: $(BIN)/demo
	$(BIN)/demo heal

clean:
	rm -rf $(BIN) data bench.out bench.txt bench-http.txt bench-generate.txt
