"""Hypothesis strategies and properties that check any paged KV-cache update against the oracle."""
