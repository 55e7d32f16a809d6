"""tuner: tune and compare machine-learning model families on tabular data.

Public API (nothing heavy is imported until used)::

    import tuner
    board = tuner.tune(df, target="churned", metric="f1", trials=30)
    tuner.leaderboard(run="churn")        # the stored leaderboard as a DataFrame
    tuner.report(run="churn", out="report.html")
    model = tuner.load("model/")          # a folder written by `tuner export`
    model.predict(new_rows); model.predict_proba(new_rows)
    tuner.export("model/", run="churn")   # `tuner export` from Python; returns the loaded model
    tuner.best_model(run="churn")         # the winner refit in memory, no folder written
    clf = tuner.TunerClassifier(trials=20).fit(X, y)   # a scikit-learn estimator (also TunerRegressor)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports each on first use
    from tuner.api import best_model, export, importance, leaderboard, report, runs, tune
    from tuner.deploy.artifact import load
    from tuner.errors import TunerError
    from tuner.estimators import TunerClassifier, TunerRegressor
    from tuner.evaluation.custom_metric import metric

__all__ = ["tune", "leaderboard", "runs", "report", "export", "best_model", "importance", "load", "TunerClassifier",
           "TunerRegressor", "TunerError", "metric"]


def __getattr__(name: str):
    if name in {"tune", "leaderboard", "runs", "report", "export", "best_model", "importance"}:
        from tuner import api

        return getattr(api, name)
    if name == "load":
        from tuner.deploy.artifact import load

        return load
    if name == "metric":  # the decorator that declares a user's metric (tuner.evaluation.custom_metric)
        from tuner.evaluation.custom_metric import metric

        return metric
    if name in {"TunerClassifier", "TunerRegressor"}:
        from tuner import estimators

        return getattr(estimators, name)
    if name == "TunerError":
        from tuner.errors import TunerError

        return TunerError
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
