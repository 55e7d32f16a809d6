"""Peer ``tuner``: driven through its public Python API, as a user would drive it.

``tuner.tune(train, target=..., task=..., metric=..., timeout=..., n_jobs=...)`` on the
training rows, then the winner of the leaderboard is refit on all training rows and
predicts the holdout (the ensemble too, unless its members' refit would not end within the
budget: then the best single family, recorded as ``leader_skipped``). The budget covers the whole process: tuning gets
``SEARCH_SHARE`` of the time left after start-up, the rest is kept for the refit.

The refit lives in :func:`refit_winner` alone, so that it can become
``tuner export`` + ``tuner.load`` once that API is settled.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.peers import _common

SEARCH_SHARE = 0.85  # of the time left when tuning starts; the rest is for the final refit
RUN = "bench"


class RefitModel:
    """A fitted winner with the interface of ``tuner.load(...)``: ``classes``,
    ``predict(df)`` (original labels or values) and ``predict_proba(df)`` (one column per class)."""

    def __init__(self, pipeline, config, family: str):
        from tuner.data.dataset import Schema

        self.pipeline, self.config, self.family = pipeline, config, family
        self.task = config.task
        self.classes = list(config.classes)
        self.schema = Schema.from_dict(config.schema)

    def _X(self, df: pd.DataFrame) -> pd.DataFrame:
        from tuner.data.dataset import coerce_features

        return coerce_features(df, self.schema)

    def predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            proba = np.asarray(self.pipeline.predict_proba(self._X(df)), dtype=float)
        codes = np.asarray(self.pipeline.classes_, dtype=int)  # codes 0..K-1 in config.classes order
        full = np.zeros((len(df), len(self.classes)))
        full[:, codes] = proba
        return pd.DataFrame(full, columns=[f"proba_{c}" for c in self.classes], index=df.index)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return np.asarray(self.pipeline.predict(self._X(df)), dtype=float)
        codes = self.predict_proba(df).to_numpy().argmax(axis=1)
        return np.asarray(self.classes, dtype=object)[codes]


def refit_winner(storage: str, run: str, family: str, params: dict, train: pd.DataFrame, n_jobs: int) -> RefitModel:
    """Refit ``family`` with ``params`` (the leaderboard winner) on all of ``train``.

    The one place to switch to ``tuner export`` / ``tuner.load`` when that API lands.
    """
    from tuner.data.dataset import Schema, coerce_features
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.storage.runs import open_storage, require_config

    config = require_config(open_storage(storage, create=False), run)
    train = train[train[config.target].notna()]  # as tuner.data.dataset.prepare does
    X = coerce_features(train.drop(columns=[config.target]), Schema.from_dict(config.schema))
    y_raw = train[config.target]
    if config.task == "regression":
        y = y_raw.to_numpy(dtype=float)
    else:
        index = {str(c): i for i, c in enumerate(config.classes)}
        y = np.array([index[str(v)] for v in y_raw.tolist()], dtype=int)
    # one process refits: the model gets every core (tuning shared them out between workers)
    ctx = space_context(config, max(1, n_jobs), n_rows=len(X))
    pipeline = build_estimator(config, family, params, ctx)
    fit_quietly(pipeline, X, y)
    return RefitModel(pipeline, config, family)


# A refit on all rows is estimated at this many times the winner's mean CV fold fit (a fold trains
# on (K-1)/K of the rows: 1.5 covers K >= 3, and the refit's extra threads are not counted on).
REFIT_PER_FOLD_FIT = 1.5


def _affordable_winner(ok: pd.DataFrame, remaining_s: float) -> tuple[pd.Series, str | None]:
    """The leaderboard's winner, unless it is the ensemble and refitting its members would not end
    within the time left: then the best single family (what a user with a deadline would export),
    and why."""
    best = ok.iloc[0]
    if best["model"] != "ensemble" or len(ok) < 2:
        return best, None
    fit = best.get("fit_time_s")
    estimate = REFIT_PER_FOLD_FIT * float(fit) if fit is not None and fit == fit else float("inf")
    if estimate <= remaining_s:
        return best, None
    single = ok[ok["model"] != "ensemble"].iloc[0]
    return single, f"ensemble refit ~{estimate:.1f}s > {remaining_s:.1f}s left: {single['model']} instead"


def _ensemble_lift(ok: pd.DataFrame, metric: str) -> dict:
    """The ensemble's CV score beside the best single family's (benchmarks/RESULTS.md: its lift)."""
    single = ok[ok["model"] != "ensemble"]
    blended = ok[ok["model"] == "ensemble"]
    return {"best_family": single.iloc[0]["model"] if len(single) else None,
            "best_family_cv": float(single.iloc[0][f"{metric}_mean"]) if len(single) else None,
            "ensemble_cv": float(blended.iloc[0][f"{metric}_mean"]) if len(blended) else None}


def model_time(storage: str, run: str) -> float:
    """Seconds every trial of the run spent inside model fit / predict (``model_time_s``)."""
    import optuna

    total = 0.0
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name.startswith(f"{run}::"):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            total += sum(float(t.user_attrs.get("model_time_s") or 0.0) for t in study.get_trials(deepcopy=False))
    return total


def _forced_split() -> tuple[int, int] | None:
    """``TUNER_PEER_SPLIT=WxT``: W worker processes × T model threads instead of tuner's own choice."""
    import os

    raw = os.environ.get("TUNER_PEER_SPLIT", "").strip()
    if not raw:
        return None
    workers, threads = (int(x) for x in raw.lower().split("x"))
    return workers, threads


def run(args) -> None:
    import tuner

    tune = tuner.tune  # the API's imports happen here, before the clock is shared out
    train = pd.read_parquet(args.train)
    X_test = pd.read_parquet(args.test)
    storage = f"sqlite:///{args.workdir / 'tuner.db'}"
    search_start_s = _common.elapsed(args)  # imports and data loading done
    timeout = max(1.0, SEARCH_SHARE * _common.remaining(args))
    started = time.monotonic()
    from tuner.execution import cores

    n_jobs = None if args.n_jobs >= cores.cpu_count() else args.n_jobs  # tuner's default when given every core
    forced = _forced_split()
    if forced is not None:  # measuring the split itself (benchmarks/RESULTS.md, "#23: cores")
        cores.plan = lambda *a, **k: cores.CorePlan(*forced, chosen=True)
    board = tune(str(args.train), target=_common.TARGET, task=args.task, metric=args.metric,
                 timeout=timeout, seed=args.seed, storage=storage, run=RUN, n_jobs=n_jobs)
    tune_s = time.monotonic() - started
    counts = board[[c for c in board.columns if c.startswith("trials_")]].fillna(0).astype(int)
    ok = board[board["status"] == "ok"]
    if ok.empty:
        states = "; ".join(f"{r['model']}: {r['status']}" for _, r in board.iterrows())
        raise RuntimeError(f"tuner finished ({tune_s:.1f}s for a {timeout:.1f}s timeout) without a completed "
                           f"trial: {states}")
    best, skipped = _affordable_winner(ok, _common.remaining(args))
    started = time.monotonic()
    model = refit_winner(storage, RUN, best["model"], json.loads(best["params"]), train, args.n_jobs)
    complete = int(counts["trials_complete"].sum()) if "trials_complete" in counts else None
    model_s = model_time(storage, RUN)
    info = {"search_start_s": search_start_s, "model": best["model"], "cv_score": float(best[f"{args.metric}_mean"]),
            "trials": int(counts.to_numpy().sum()), "complete_trials": complete,
            "tuning_timeout_s": round(timeout, 2), "tune_s": round(tune_s, 2),
            "model_time_s": round(model_s, 2), "driver_overhead": round(max(0.0, 1 - model_s / tune_s), 4),
            "refit_s": round(time.monotonic() - started, 2), "leader": ok.iloc[0]["model"],
            "leader_skipped": skipped, **_ensemble_lift(ok, args.metric)}
    if args.task == "regression":
        _common.write_predictions(args, values=model.predict(X_test), info=info)
    else:
        proba = model.predict_proba(X_test)
        _common.write_predictions(args, labels=model.predict(X_test), proba=proba.to_numpy(),
                                  proba_classes=model.classes, info=info)
    # a fit the run gave up on may still be in a C++ solver: leave without finalizing under it
    # (tuner.execution.fit_watchdog; the CLI does the same)
    from tuner.execution.fit_watchdog import exit_now_if_fits_abandoned

    exit_now_if_fits_abandoned(0)


if __name__ == "__main__":
    _common.main(run, __doc__)
