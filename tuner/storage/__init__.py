"""Runs in an Optuna storage: opening it, run configs, locks."""
