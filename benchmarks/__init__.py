"""Benchmarks: each suite measures a figure side by side with its baseline in the same run."""
