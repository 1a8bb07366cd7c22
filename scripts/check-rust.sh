#!/usr/bin/env bash
# The Rust toolchain on PATH (rustup's) builds everything; crates come from the crate registry at
# the versions Cargo.lock records. An absent or too old toolchain stops set-up with one line:
# nothing else is tried (Debian's rustc is older than the workspace's rust-version).
set -euo pipefail
cd "$(dirname "$0")/.."
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
fix="install Rust $need or newer with rustup, then run make again"
if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
  echo "check-rust: error: Rust $need or newer is needed, none found on PATH; $fix" >&2
  exit 2
fi
found=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need" "${found%%-*}" | sort -V | head -n 1)" != "$need" ]; then
  echo "check-rust: error: Rust $need or newer is needed, found $found ($(command -v rustc)); $fix" >&2
  exit 2
fi
