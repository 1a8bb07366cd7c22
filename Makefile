# Two commands: `make run` and `make test`. Each does all set-up first (Debian packages, the
# Python venv, the release build of the Rust workspace); set-up is idempotent and takes seconds
# when nothing changed.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
CARGO ?= cargo
ARGS ?=

.PHONY: run test setup apt venv build lint fmt clean

run: setup
	$(VENV)/bin/harness run $(ARGS)

# The Rust unit tests live in the workspace's libraries (tests/test_layout.py checks that no
# binary holds one): testing only --lib spares a thin-LTO link of an empty test binary per design.
test: setup lint
	$(CARGO) test --release --workspace --lib --quiet
	$(VENV)/bin/pytest $(ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "no tests ran" >&2; exit 1; }; exit $$rc

setup: apt venv build

apt:
	@scripts/setup-apt.sh

venv: $(STAMP)
$(STAMP): pyproject.toml scripts/setup-venv.sh
	scripts/setup-venv.sh
	touch $@

build: apt
	@scripts/check-rust.sh
	$(CARGO) build --release --workspace --quiet

# Style gates. rustfmt and clippy come with rustup's default profile: skipped (and said) when a
# minimal profile left them out.
lint: setup
	$(VENV)/bin/ruff check harness tests servers/python
	$(VENV)/bin/ruff format --check harness tests servers/python
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --all --check; \
	else echo "lint: no rustfmt here, Rust formatting not checked"; fi
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	  $(CARGO) clippy --release --workspace --all-targets --quiet -- -D warnings; \
	else echo "lint: no clippy here, Rust lints not checked"; fi

fmt: venv
	$(VENV)/bin/ruff format harness tests servers/python
	$(VENV)/bin/ruff check --fix harness tests servers/python
	$(CARGO) fmt --all

clean:
	rm -rf target $(VENV)
