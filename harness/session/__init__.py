"""The sessions that drive the stages through one command: `harness run` (run.py: resume or
prepare, check, calibrate, plan, execute, report), its hosts (hosts.py) and the report of a
stored run (report.py). The command line (harness/cli) parses its arguments and calls them."""
