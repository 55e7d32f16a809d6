"""Held-out test set and refit scores of each family's best trial.

With ``--test-size F`` a stratified, seeded fraction of the rows (whole groups with
``--groups``, the latest rows with ``--time-column``) is split off before any tuning (``tuner.data.dataset.split_holdout``); the families only ever see the training part.
After tuning, each family's best trial is refit on the whole training part (the very pipeline
that was cross-validated, from ``tuner.evaluation.estimator.build_estimator``) and scored on

* the test part, for every metric of the task (only when the run has a test split), and
* the training part itself, so that "training score minus CV score" shows overfitting.

The scores are stored in the family study's user attribute ``holdout``, keyed by the
trial number they belong to, so the leaderboard reads them from the storage alone and a
new best trial (more trials, workers, re-ranking by another metric) gets scored anew.
Ranking stays by cross-validation: the test set is looked at once per best trial, never
used to choose anything.

``tuner.workflow.derived.score_best`` refits, scores and stores (this module only reads and
refits); the leaderboard only reads the stored scores (``leaderboard.stored_refit_scores``).
"""

from __future__ import annotations

import math

import numpy as np

from tuner.config import RunConfig, now_iso
from tuner.data.dataset import Dataset, check_test_size, split_holdout
from tuner.storage.runs import load_config


def resolve_split(storage, ds: Dataset, *, run: str, test_size: float | None, seed: int | None,
                  gap: int | None = None) -> tuple[Dataset, Dataset | None, float]:
    """(training part, test part or None, test fraction) for a new or continued run.

    Options left as None inherit from the stored run, as in ``tuner.search.run_setup.make_config``;
    a conflicting value is refused later by ``tuner.storage.runs.check_compatible``.
    """
    check_test_size(test_size)
    existing = load_config(storage, run)
    fraction = test_size if test_size is not None else (existing.test_size if existing else 0.0)
    seed = seed if seed is not None else (existing.seed if existing else 0)
    gap = gap if gap is not None else (existing.gap if existing else 0)
    if not fraction:
        return ds, None, 0.0
    train, test = split_holdout(ds, fraction, seed, gap)
    return train, test, float(fraction)


def refit_and_score(config: RunConfig, family: str, params: dict, train: Dataset, test: Dataset | None,
                    n_jobs: int = 1, fitted=None, threshold: float | None = None,
                    calibration: dict | None = None) -> dict:
    """Refit one configuration on ``train``; every metric on ``train`` and (if given) ``test``.
    ``fitted``: this configuration already fitted on ``train`` (the run's final model): no refit;
    ``threshold``: a binary row's decision threshold, which its labels are scored at (as it predicts);
    ``calibration``: the row's calibration entry, whose map its probabilities go through (as it predicts)."""
    from tuner.evaluation.cross_validation import fit_quietly, predict_outputs
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.evaluation.metrics import score_all
    from tuner.evaluation.weights import fit_params
    from tuner.models import calibrated

    k = len(config.classes)
    estimator = fitted
    if estimator is None:
        estimator = build_estimator(config, family, params, space_context(config, n_jobs))
        fit_quietly(estimator, train.X, train.y, **fit_params(estimator, train.weights))
    estimator = calibrated.wrap(estimator, calibration, k)

    def score(ds: Dataset) -> dict:
        pred, proba = predict_outputs(estimator, ds.X, config.task, k)
        if threshold is not None and config.task == "binary":
            from tuner.evaluation.threshold import labels

            pred = labels(np.asarray(proba)[:, 1], threshold)
        return {m: (None if v is None or not math.isfinite(v) else float(v))
                for m, v in score_all(config.task, ds.y, pred, proba, k, ds.weights, config.metric).items()}

    return {
        "train": score(train),
        "test": score(test) if test is not None else None,
        "n_train": int(len(train.y)),
        "n_test": int(len(test.y)) if test is not None else 0,
        "scored_at": now_iso(),
    }


__all__ = ["resolve_split", "refit_and_score"]
