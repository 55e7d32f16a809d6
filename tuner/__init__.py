"""tuner: tune and compare machine-learning model families on tabular data.

Public API (nothing heavy is imported until used)::

    import tuner
    board = tuner.tune(df, target="churned", metric="f1", trials=30)
    tuner.leaderboard(run="churn")        # the stored leaderboard as a DataFrame
    tuner.report(run="churn", out="report.html")
    model = tuner.load("model/")          # a folder written by `tuner export`
    model.predict(new_rows); model.predict_proba(new_rows)
"""

from __future__ import annotations

__all__ = ["tune", "leaderboard", "runs", "report", "load", "TunerError"]


def __getattr__(name: str):
    if name in {"tune", "leaderboard", "runs", "report"}:
        from tuner import api

        return getattr(api, name)
    if name == "load":
        from tuner.deploy.artifact import load

        return load
    if name == "TunerError":
        from tuner.errors import TunerError

        return TunerError
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
