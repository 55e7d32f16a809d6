"""Folds, metrics, cross-validation of one pipeline, pruning, paired statistics."""
