"""PyTorch models (pure modules and training loops; no Dagster here)."""
