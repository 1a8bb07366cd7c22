#!/usr/bin/env bash
# Decide where crates come from, once per checkout (delete .cargo/config.toml to decide again).
#   CARGO_SOURCE=auto      (default) crates.io when it answers, otherwise Debian's sources
#   CARGO_SOURCE=debian    cargo source replacement to /usr/share/cargo/registry, offline
#   CARGO_SOURCE=crates-io the public registry
# Both build the same pinned versions (exact pins in Cargo.toml). The committed Cargo.lock comes
# from the Debian sources, whose packages carry no crates.io checksums; in crates-io mode the
# lock is regenerated at the same versions (see docs/architecture.md, "Native builds").
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${CARGO_SOURCE:-auto}"
config=.cargo/config.toml
registry=/usr/share/cargo/registry
if [ -f "$config" ] && [ "$mode" = auto ]; then exit 0; fi
if [ "$mode" = auto ]; then
  if (cd /tmp && CARGO_NET_RETRY=0 CARGO_HTTP_TIMEOUT=5 timeout 20 cargo search --limit 1 serde) >/dev/null 2>&1; then
    mode=crates-io
  else
    mode=debian
  fi
fi
mkdir -p .cargo
case "$mode" in
  debian)
    [ -d "$registry" ] || { echo "setup-cargo: $registry is missing; run scripts/setup-apt.sh" >&2; exit 1; }
    cat > "$config" <<CFG
# Written by scripts/setup-cargo.sh: crates come from Debian's librust-*-dev packages.
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "$registry"
[net]
offline = true
CFG
    ;;
  crates-io)
    printf '# Written by scripts/setup-cargo.sh: crates come from crates.io.\n' > "$config"
    if grep -q 'Could not get crate checksum' Cargo.lock 2>/dev/null; then
      cp Cargo.lock .cargo/Cargo.lock.debian
      rm Cargo.lock
      cargo generate-lockfile
      # Pin every crate to the version the Debian lock has (best effort per crate).
      awk '/^name = /{n=$3} /^version = /{gsub(/"/,"",n); v=$3; gsub(/"/,"",v); print n, v}' \
        .cargo/Cargo.lock.debian | while read -r name version; do
        cargo update -q -p "$name" --precise "$version" 2>/dev/null || true
      done
    fi
    ;;
  *) echo "setup-cargo: CARGO_SOURCE must be auto, debian or crates-io, got '$mode'" >&2; exit 2 ;;
esac
echo "setup-cargo: crates from $mode"
