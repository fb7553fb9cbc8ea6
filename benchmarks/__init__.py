"""Benchmarks that print figures: the update on serving layouts, and the harness's throughput."""
