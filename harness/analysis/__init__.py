"""Stage 5, analysis: pure computation from a stored run to one `Analysis` value (histograms,
statistics, flagged trials, per-configuration summaries, design and run comparisons)."""
