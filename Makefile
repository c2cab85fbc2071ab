# certdeploy: the commands a new user and CI need. Each installs what is missing first (apt, as root).
SHELL := /bin/bash
SWIFT ?= swift
# Keeps `swift build` and `swift test` from recompiling dependencies when switching between them.
export SWIFT_DETERMINISTIC_HASHING := 1

ARGS ?=

.PHONY: run test bench build deps-run deps-test clean

deps-run:
	@bash scripts/install-deps.sh run

deps-test:
	@bash scripts/install-deps.sh test

build: deps-run
	$(SWIFT) build --product certdeploy

## make run: install, build, and run the certdeploy CLI (ARGS="deploy --config … --cert … --key …").
run: build
	@.build/debug/certdeploy $(if $(ARGS),$(ARGS),--help)
	@echo
	@.build/debug/certdeploy connectors list

## make test: install and start nothing by hand: the tests start sshd, nginx … on loopback themselves.
test: deps-test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## make bench: fleet deploy benchmark against a local sshd (see README, Performance).
bench: deps-test
	$(SWIFT) build -c release --product certdeploy-bench
	.build/release/certdeploy-bench $(ARGS)

clean:
	rm -rf .build
