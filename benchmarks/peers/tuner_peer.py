"""Peer ``tuner``: driven only through its public Python API, as a user drives it.

``tuner.tune(train, target=..., task=..., metric=..., timeout=..., n_jobs=...)`` on the training
rows with the whole time left after start-up as its clock (tuner keeps part of it for the final
fit itself), then ``tuner.export(folder)`` (the model the run fitted and kept, written without a
refit while it is the winner) and ``tuner.load(folder)`` to predict the holdout: the path of the
README (``tuner run --timeout`` + ``tuner export`` + ``tuner predict``), in one process. The wall
time the harness measures covers all of it. Nothing of ``tuner``'s internals is imported; the
trials' time inside the models is read from the Optuna storage with Optuna's public API.
"""

from __future__ import annotations

import time

import pandas as pd

from benchmarks.peers import _common

RUN = "bench"


def model_time(storage: str, run: str) -> float:
    """Seconds every trial of the run spent inside model fit / predict (``model_time_s``)."""
    import optuna

    total = 0.0
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name.startswith(f"{run}::"):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            total += sum(float(t.user_attrs.get("model_time_s") or 0.0) for t in study.get_trials(deepcopy=False))
    return total



def run(args, **options) -> None:
    """``options``: more of ``tuner.tune``'s public options (a variant peer's, e.g. ``early_stop=True``)."""
    import tuner

    tune = tuner.tune  # the API's imports happen here, before the clock starts
    X_test = pd.read_parquet(args.test)
    storage = f"sqlite:///{args.workdir / 'tuner.db'}"
    search_start_s = _common.elapsed(args)  # imports and data loading done
    timeout = max(1.0, _common.remaining(args))
    started = time.monotonic()
    import os

    n_jobs = None if args.n_jobs >= len(os.sched_getaffinity(0)) else args.n_jobs  # the default when given every core
    board = tune(str(args.train), target=_common.TARGET, task=args.task, metric=args.metric,
                 timeout=timeout, seed=args.seed, storage=storage, run=RUN, n_jobs=n_jobs, **options)
    tune_s = time.monotonic() - started
    counts = board[[c for c in board.columns if c.startswith("trials_")]].fillna(0).astype(int)
    ok = board[board["status"] == "ok"]
    if ok.empty:
        states = "; ".join(f"{r['model']}: {r['status']}" for _, r in board.iterrows())
        raise RuntimeError(f"tuner finished ({tune_s:.1f}s for a {timeout:.1f}s timeout) without a completed "
                           f"trial: {states}")
    started = time.monotonic()
    model = tuner.export(str(args.workdir / "model"), storage=storage, run=RUN)
    export_s = time.monotonic() - started
    complete = int(counts["trials_complete"].sum()) if "trials_complete" in counts else None
    model_s = model_time(storage, RUN)
    processes = n_jobs or len(os.sched_getaffinity(0))  # the clocked default: one worker process per core
    final = model.card.get("final_fit") or {}
    info = {"search_start_s": search_start_s, "model": model.card["family"],
            "cv_score": float(model.card["leaderboard_row"]["metrics"][args.metric]["mean"]),
            "trials": int(counts.to_numpy().sum()), "complete_trials": complete,
            "tuning_timeout_s": round(timeout, 2), "tune_s": round(tune_s, 2),
            "model_time_s": round(model_s, 2), "driver_overhead": round(max(0.0, 1 - model_s / (tune_s * processes)), 4),
            "refit_s": final.get("seconds"), "refit_estimate_s": final.get("estimate_s"),
            "final_choice": final.get("chosen"), "export_s": round(export_s, 2),
            "leader": ok.iloc[0]["model"], "stopped_early": board.attrs.get("stopped_early")}
    if args.task == "regression":
        _common.write_predictions(args, values=model.predict(X_test), info=info)
    else:
        proba = model.predict_proba(X_test)
        _common.write_predictions(args, labels=model.predict(X_test), proba=proba.to_numpy(),
                                  proba_classes=list(model.classes), info=info)
    # A fit the run gave up on may still be inside a C++ solver; finalizing the interpreter under
    # it can crash the process after its work is done (tuner's CLI leaves the same way).
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _common.main(run, __doc__)
