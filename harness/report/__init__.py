"""Stage 6, report: presentation only. Formats and draws an `Analysis` as the HTML report,
the exports beside it and the comparison of two runs; computes nothing of its own."""
