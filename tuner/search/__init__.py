"""The driver: one Optuna study per model family, and its sampler."""
