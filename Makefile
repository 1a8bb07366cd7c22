# Two commands: `make run` and `make test`. Each does all set-up first (Debian packages, the
# Python venv, the release build of the Rust workspace); set-up is idempotent and takes seconds
# when nothing changed.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
CARGO ?= cargo
ARGS ?=

.PHONY: help run test setup apt venv build lint lock gate fmt clean
.DEFAULT_GOAL := help

# `make` alone lists the targets (the `## ` comments below) instead of starting a benchmark.
help:
	@echo "usage: make TARGET [ARGS='...']"
	@sed -n 's/^\([a-z-]*\):.*## \(.*\)/  \1\t\2/p' $(MAKEFILE_LIST) | expand -t 10

run: setup ## set up, then the default benchmark (results/, reports/); ARGS= for harness run
	$(VENV)/bin/harness run $(ARGS)

# The Rust unit tests live in the workspace's libraries (tests/test_layout.py checks that no
# binary holds one): testing only --lib spares a thin-LTO link of an empty test binary per design.
# pytest ends with its 15 slowest tests: where the time went (tests/README.md, "Where the time
# goes").
test: setup lint ## set up, lint, then every test (Rust unit tests and pytest)
	$(CARGO) test --release --workspace --lib --quiet
	$(VENV)/bin/pytest --durations=15 $(ARGS); rc=$$?; \
	[ $$rc -eq 5 ] && { echo "no tests ran" >&2; exit 1; }; exit $$rc

setup: apt venv build ## Debian packages, the locked .venv, the release build

# APT_LIST=scripts/apt-packages-ci.txt: only what the `ci` profile needs (the benchmark workflow).
apt:
	@scripts/setup-apt.sh $(APT_LIST)

venv: $(STAMP)
$(STAMP): requirements.lock scripts/setup-venv.sh
	scripts/setup-venv.sh
	touch $@

build: apt
	@scripts/check-rust.sh
	$(CARGO) build --release --workspace --quiet

# Style gates. rustfmt and clippy come with rustup's default profile: skipped (and said) when a
# minimal profile left them out.
lint: setup ## ruff, rustfmt, clippy, and the benchmark workflow's schema and security lints
	$(VENV)/bin/ruff check harness tests servers/python
	$(VENV)/bin/ruff format --check harness tests servers/python
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --all --check; \
	else echo "lint: no rustfmt here, Rust formatting not checked"; fi
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	  $(CARGO) clippy --release --workspace --all-targets --quiet -- -D warnings; \
	else echo "lint: no clippy here, Rust lints not checked"; fi
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --no-progress .github/workflows/

# The lock: every Python package, direct and transitive, at an exact version with its hashes,
# for every Python the README supports (>= 3.11, any platform). Run it after changing a pin in
# pyproject.toml, or to take newer releases on purpose; commit requirements.lock with the change.
lock: venv ## re-resolve requirements.lock from pyproject.toml (then commit it)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --generate-hashes \
	  --python-version 3.11 --no-header --quiet -o requirements.lock

# The benchmark gate of .github/workflows/benchmark.yml, run here: BASE=REF (default: HEAD).
gate: setup ## the CI benchmark gate against BASE=REF (default HEAD), as the workflow runs it
	scripts/bench-gate --base $(or $(BASE),HEAD) --candidate . $(ARGS)
fmt: venv ## format and autofix Python and Rust
	$(VENV)/bin/ruff format harness tests servers/python
	$(VENV)/bin/ruff check --fix harness tests servers/python
	$(CARGO) fmt --all

clean: ## remove target/ and .venv
	rm -rf target $(VENV)
