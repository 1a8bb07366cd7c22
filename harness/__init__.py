"""Benchmark harness, one package per stage of its pipeline, in order:

plan -> run -> checks -> store -> analysis -> report, driven by cli.

A module imports only from its own stage or an earlier one (tests/test_layout.py checks it);
`harness.errors` is shared by all of them.
"""
