"""Stage 2, run: processes, one server start/READY/stop (`server`), one trial (`trial`) with
its /proc sampling, the per-trial flags, and the loop over a plan (`execute`)."""
