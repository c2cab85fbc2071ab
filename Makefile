# certdeploy: the commands a new user and CI need. Each installs what is missing first (apt, as root).
SHELL := /bin/bash
SWIFT ?= swift
# Keeps `swift build` and `swift test` from recompiling dependencies when switching between them.
export SWIFT_DETERMINISTIC_HASHING := 1

ARGS ?=

.PHONY: run test bench build deps-run deps-test clean connector

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
	$(SWIFT) test --skip-build --disable-swift-testing

## make bench: fleet deploy benchmark against a local sshd (see README, Performance).
bench: deps-test
	$(SWIFT) build -c release --product certdeploy-bench
	.build/release/certdeploy-bench $(ARGS)

clean:
	rm -rf .build

## make connector NAME=Postfix: scaffold a new connector module (see docs/connectors/writing-a-connector.md).
connector:
	@test -n "$(NAME)" || { echo "usage: make connector NAME=UpperCamelName"; exit 2; }
	$(SWIFT) build --product certdeploy
	.build/debug/certdeploy connectors new $(NAME)
