#!/usr/bin/env bash
# The project's virtual environment, made anew from requirements.lock and nothing else: every
# package, direct and transitive, at the exact version and hash the lock records (`make lock`
# refreshes it from pyproject.toml). A fresh venv each time the lock changes, so that two
# clones install exactly the same packages and nothing left over from an older lock stays.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup-venv: error: Python 3.11 or newer is needed, found $("$python" --version 2>&1 || echo none) ($python); install python3 >= 3.11 or set PYTHON=/path/to/python3.11, then run make again" >&2
  exit 2
fi
rm -rf .venv
"$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check --no-input -q)
# uv installs the lock (every hash checked, the same packages) in about 7 s where pip takes about
# 36 s here; uv itself comes first, by pip, at the lock's own pin and hashes.
"${pip[@]}" install --require-hashes --no-deps -r <(awk '/^uv==/ { p = 1 } p { print } p && !/\\$/ { exit }' requirements.lock)
.venv/bin/uv pip sync --require-hashes --python .venv/bin/python -q requirements.lock
# The harness itself, editable, built by the locked setuptools: no index, no build isolation.
"${pip[@]}" install --no-deps --no-build-isolation --no-index -e .
