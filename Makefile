# certdeploy: the commands a new user and CI need. Each installs what is missing first (apt, as root).
SHELL := /bin/bash
SWIFT ?= swift
# Keeps `swift build` and `swift test` from recompiling dependencies when switching between them.
export SWIFT_DETERMINISTIC_HASHING := 1

ARGS ?=
API_ARGS ?=

.PHONY: run test bench build deps-run deps-test clean connector

deps-run:
	@bash scripts/install-deps.sh run

deps-test:
	@bash scripts/install-deps.sh test

build: deps-run
	$(SWIFT) build --product certdeploy

## make run: install, build, and start the server on SQLite under ./data (first run creates an admin API key
## and the secrets passphrase there; see scripts/run-server.sh). ARGS go to `certdeploy serve`.
run: build
	@bash scripts/run-server.sh $(ARGS)

## make test: install and start nothing by hand: the tests start sshd, nginx … on loopback themselves.
test: deps-test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing
	bash scripts/schemathesis.sh

## make bench: fleet deploy benchmark against a local sshd, a rollout of 200 targets through the API, then the HTTP
## API benchmark (10,000 targets, SQLite and PostgreSQL; see README, Performance). ARGS go to the fleet benchmark,
## ROLLOUT_ARGS to the rollout one, API_ARGS to the API one
## (API_ARGS="--targets 10000 --clients 16 --store sqlite|postgres|both").
bench: deps-test
	$(SWIFT) build -c release --product certdeploy-bench
	.build/release/certdeploy-bench fleet $(ARGS)
	.build/release/certdeploy-bench rollout $(ROLLOUT_ARGS)
	.build/release/certdeploy-bench api $(API_ARGS)

clean:
	rm -rf .build

## make connector NAME=Postfix: scaffold a new connector module (see docs/connectors/writing-a-connector.md).
connector:
	@test -n "$(NAME)" || { echo "usage: make connector NAME=UpperCamelName"; exit 2; }
	$(SWIFT) build --product certdeploy
	.build/debug/certdeploy connectors new $(NAME)
