"""Benchmarks: each prints the project beside its baseline and ends with ``ratio: X``."""
