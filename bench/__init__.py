"""Benchmarks: splash_core against the obvious alternatives, reported as ratios."""
