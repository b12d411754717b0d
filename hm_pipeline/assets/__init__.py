"""Thin Dagster wiring over the pure modules."""
