# Orbit billing engine. `make run` starts the embedded default; `make test`
# runs every test. These targets install or build what they need.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: all build run test fuzz-short vet bench bench-load bench-compare clean stripe-mock chromium cluster cluster-stop chaos

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# run starts a single node on 127.0.0.1:8080 with its data in ./data.
run: build
	./$(BIN)/orbitd

# cluster starts three local nodes (127.0.0.1:8081-8083, data in .cluster/)
# and prints how to use them; cluster-stop stops them.
cluster: build
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop

vet:
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# test: every test (end-to-end ones start real orbitd processes), then the
# engine and the pipeline again under the race detector.
test: vet build stripe-mock chromium
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -short -timeout 10m ./engine/... ./raftstore/... ./server/...
	$(MAKE) fuzz-short

# fuzz-short fuzzes each fuzz target for FUZZTIME: the fuzzing test
# binaries are built once and run per target (-fuzz takes one target per
# run), with the go command's fuzz cache. The budget is a count of
# executions, not a duration: Go 1.26's coordinator can fail a duration-
# bounded run with a spurious "context deadline exceeded" on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27). The seed corpora in
# testdata/fuzz/ also run as plain tests in `go test ./...`. Longer runs:
# make fuzz-short FUZZTIME=200000x (or 30s, accepting that flake).
FUZZTIME ?= 4000x
SERVER_FUZZ := FuzzChargeBody FuzzChargeBatchBody FuzzReservationBody FuzzReservationAction \
	FuzzRefundBody FuzzDeliveryBody FuzzTopupBody FuzzQueries FuzzTxQuery FuzzAdminBody \
	FuzzDecodeRateCard FuzzParseFxRate FuzzStripeWebhook FuzzStripeEvent FuzzRouting
fuzz-short:
	@set -e; cache="$$($(GO) env GOCACHE)/fuzz/github.com/orbit/orbit"; root="$$(pwd)"; \
	  $(GO) test -c -fuzz=. -o $(BIN)/server.fuzz ./server/; \
	  $(GO) test -c -fuzz=. -o $(BIN)/jsonx.fuzz ./server/jsonx/; \
	  run() { echo "== $$2 ($(FUZZTIME))"; (cd "$$1" && "$$root/$(BIN)/$$3" -test.run='^$$' -test.fuzz="^$$2\$$" \
	    -test.fuzztime=$(FUZZTIME) -test.timeout=2m -test.fuzzcachedir="$$cache/$$1" 2>&1 | { grep -v '^fuzz: elapsed' || true; }; \
	    test "$${PIPESTATUS[0]}" = 0); }; \
	  for f in $(SERVER_FUZZ); do run server $$f server.fuzz; done; \
	  run server/jsonx FuzzParse jsonx.fuzz

# chaos: the long fault runs (about 10 minutes here; the timeouts cap it at
# 22). Linearizability
# histories under network partitions (in-process cluster, raftstore) and
# leader kill -9 (real processes, e2e), with more clients, seeds and fault
# rounds than `make test`; then the seeded simulation of the write path
# (raftstore TestSimulation, CHAOS_SIM_SEEDS seeds). Every long test prints a CHAOS line;
# scripts/chaos-summary.sh turns them into a table, and the target fails on
# a failed test or a violation. Failing histories are saved in
# $(CHAOS_DIR) (porcupine's HTML visualization and the raw JSON).
CHAOS_DIR ?= $(CURDIR)/bin/chaos
# About 35 ms a seed on a 2-core machine: 5000 seeds take 3 minutes.
CHAOS_SIM_SEEDS ?= 5000
chaos: build
	@mkdir -p $(CHAOS_DIR); log="$(CHAOS_DIR)/chaos.log"; : > "$$log"; status=0; \
	  ORBIT_CHAOS=1 ORBIT_HISTORY_DIR=$(CHAOS_DIR) $(GO) test -count=1 -p 1 -v -timeout 10m \
	    -run 'TestLinearizableUnderPartitions|TestLinearizableAcrossLeaderKill' ./raftstore/ ./e2e/ 2>&1 | tee -a "$$log" \
	    | grep -E '^(=== RUN|--- |CHAOS|ok|FAIL|PASS)|linearizab' ; \
	  [ "$${PIPESTATUS[0]}" = 0 ] || status=1; \
	  ORBIT_SIM_SEEDS=$(CHAOS_SIM_SEEDS) $(GO) test -count=1 -p 1 -v -timeout 12m -run 'TestSimulation$$' ./raftstore/ 2>&1 | tee -a "$$log" \
	    | grep -E '^(--- |CHAOS|ok|FAIL|PASS)' ; \
	  [ "$${PIPESTATUS[0]}" = 0 ] || status=1; \
	  echo; scripts/chaos-summary.sh "$$log" || status=1; \
	  echo "full log: $$log"; exit $$status

# stripe-mock (Stripe's API mock) for e2e/stripe_test.go, installed into
# $(go env GOPATH)/bin when missing.
STRIPE_MOCK_VERSION := v0.203.0
stripe-mock:
	@bin="$$($(GO) env GOPATH)/bin/stripe-mock"; \
	  if [ ! -x "$$bin" ]; then \
	    echo "installing stripe-mock $(STRIPE_MOCK_VERSION) into $$bin"; \
	    GOBIN="$$($(GO) env GOPATH)/bin" $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION); \
	  fi

# chromium (headless, at /usr/bin/chromium) for the dashboard's browser
# tests (e2e/dashboard_test.go), installed with apt-get when missing.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# bench: Go benchmarks; bench-load: the orbit-bench standard set (engine,
# durable with 1 and 1,000 charges per submit, http, http-batch, reservations, hot-org); bench-compare: ours and
# the peers in ../shared/peers (PostgreSQL, Redis, HTTP ceiling) in one run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./raftstore/ ./wal/ ./server/jsonx/

bench-load:
	scripts/bench.sh 5

bench-compare:
	scripts/bench-compare.sh 10 64 1000

clean:
	rm -rf $(BIN)
