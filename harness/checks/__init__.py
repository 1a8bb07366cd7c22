"""Stage 3, checks: is this machine fit to measure (`doctor`), and does each design do the same
work as the others (`conformance`)? Built from the run stage's server start."""
