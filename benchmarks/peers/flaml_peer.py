"""Peer ``flaml``: ``flaml.AutoML`` with its defaults, given the budget and the metric.

``time_budget`` is FLAML's search time; by default FLAML retrains the chosen model on all
rows *after* the search, so it gets ``SEARCH_SHARE`` of the time left after start-up
(the same share ``tuner`` gets) and the rest is left for that retrain and the prediction.
Everything else (estimator list, evaluation method, sample sizes) is FLAML's default.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.peers import _common

SEARCH_SHARE = 0.85


def run(args) -> None:
    try:
        from flaml import AutoML
    except ImportError as exc:
        raise SystemExit(f"flaml is not installed ({exc}): pip install -e '.[bench]'") from None

    X, y, X_test = _common.load(args)
    automl = AutoML()
    search_start_s = _common.elapsed(args)  # imports and data loading done
    budget = max(1.0, SEARCH_SHARE * _common.remaining(args))
    started = time.monotonic()
    automl.fit(X, y, task="regression" if args.task == "regression" else "classification",
               time_budget=budget, metric=args.metric, n_jobs=args.n_jobs, seed=args.seed, verbose=0)
    info = {"search_start_s": search_start_s, "model": automl.best_estimator,
            "cv_score": _score(automl, args.metric), "time_budget_s": round(budget, 2),
            "fit_s": round(time.monotonic() - started, 2)}
    if args.task == "regression":
        _common.write_predictions(args, values=automl.predict(X_test), info=info)
        return
    proba = automl.predict_proba(X_test)
    _common.write_predictions(args, labels=automl.predict(X_test), proba=proba,
                              proba_classes=np.asarray(automl.classes_), info=info)


def _score(automl, metric: str):
    """FLAML minimises a loss; for these metrics the loss is 1 - score."""
    loss = automl.best_loss
    return None if loss is None or not np.isfinite(loss) else float(1 - loss)


if __name__ == "__main__":
    _common.main(run, __doc__)
