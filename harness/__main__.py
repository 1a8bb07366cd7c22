"""`python -m harness`: the same entry point as the `harness` command (harness.cli.main), which
turns every error a user can cause or meet into one `harness: error: ...` line and its exit code
(harness/errors.py: 2 bad input or a damaged results file, 3 could not store, 130 interrupted)."""

import sys

from harness.cli import main

sys.exit(main())
