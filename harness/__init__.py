"""Benchmark harness: plan -> run -> store -> analyse -> report."""
