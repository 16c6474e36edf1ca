# Orbit billing engine. `make run` starts the embedded default; `make test`
# runs every test. Everything needed is installed or built by these targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
STRIPE_MOCK_VERSION := v0.203.0

.PHONY: all build run test test-short vet fmt bench clean tools

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	./$(BIN)/orbitd

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

# test runs every test with the race detector off (the crash and system tests
# start real processes; -race would slow them past usefulness) and then the
# engine and pipeline packages again under -race.
test: vet build
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -timeout 10m ./engine/... ./raftstore/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./raftstore/ ./wal/

clean:
	rm -rf $(BIN)
