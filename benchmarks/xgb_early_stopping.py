"""XGBoost early stopping on or off at an equal trial count (#23): what it does to scores and time.

    python -m benchmarks.xgb_early_stopping [--suite both] [--trials 12] [--max-rows 10000] [--out CSV]

For every dataset of the suites with at least ``search_spaces.xgboost.EARLY_STOPPING_MIN_ROWS``
rows (where tuner turns early stopping on), subsampled to ``--max-rows``, and the outer 75 / 25
split of ``benchmarks.compare`` (seed 0): the xgboost family alone is tuned twice with the same
seed and the same ``--trials`` (3-fold CV, one process, ``--threads`` threads), once as tuner
ships it and once with early stopping off (the module constant raised past the table's rows);
then the winner is refit on the training rows and scores the holdout. The trial count is fixed,
so any difference is early stopping's: the rounds it saves (time) and the tenth of the rows it
holds out for stopping (score). Prints a Markdown table; ``--out`` also writes the rows as CSV.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import suites
from benchmarks.scoring import HEADLINE, score


def _predictions(model, test_X: pd.DataFrame, task: str) -> dict:
    if task == "regression":
        return {"values": np.asarray(model.predict(test_X), dtype=float)}
    proba = model.predict_proba(test_X)
    return {"labels": list(model.predict(test_X)), "proba": proba.to_numpy().tolist(),
            "proba_classes": [c.removeprefix("proba_") for c in proba.columns]}


def run_one(train: pd.DataFrame, test: pd.DataFrame, task: str, early_stopping: bool, trials: int,
            threads: int, seed: int) -> dict:
    """Tune xgboost with early stopping on or off; its CV score, tuning seconds and holdout score."""
    import search_spaces.xgboost as space
    import tuner

    shipped = space.EARLY_STOPPING_MIN_ROWS
    space.EARLY_STOPPING_MIN_ROWS = shipped if early_stopping else len(train) + 1
    try:
        with tempfile.TemporaryDirectory(prefix="tuner-es-") as tmp:
            storage = f"sqlite:///{Path(tmp) / 'tuner.db'}"
            start = time.perf_counter()
            board = tuner.tune(train, target=suites.TARGET, task=task, models=["xgboost"], trials=trials, cv=3,
                               seed=seed, storage=storage, run="es", n_jobs=threads)
            tune_s = time.perf_counter() - start
            model = tuner.best_model(run="es", storage=storage, data=train, n_jobs=threads)
            test_X = test.drop(columns=[suites.TARGET])
            holdout = score(task, test[suites.TARGET], _predictions(model, test_X, task))[HEADLINE[task]]
            booster = getattr(model.pipeline, "regressor_", model.pipeline)[-1].get_booster()
            return {"cv": float(board.iloc[0][f"{HEADLINE[task]}_mean"]), "holdout": float(holdout),
                    "tune_s": tune_s, "trees": int(booster.num_boosted_rounds())}
    finally:
        space.EARLY_STOPPING_MIN_ROWS = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="both", choices=["pmlb", "mixed", "both"])
    parser.add_argument("--datasets", help="comma-separated names (default: every dataset large enough)")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="CSV of the rows")
    args = parser.parse_args()
    from search_spaces.xgboost import EARLY_STOPPING_MIN_ROWS

    names = args.datasets.split(",") if args.datasets else None
    rows = []
    print("| dataset | task | rows | metric | holdout on | holdout off | on − off | CV on | CV off "
          "| trees on / off | tune s on / off |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for ds in suites.list_datasets(args.suite, names, {"pmlb": None, "mixed": None}):
        train, test = suites.split(suites.load_dataset(ds), ds.task, args.seed, args.max_rows)
        if len(train) < EARLY_STOPPING_MIN_ROWS:
            continue
        on = run_one(train, test, ds.task, True, args.trials, args.threads, args.seed)
        off = run_one(train, test, ds.task, False, args.trials, args.threads, args.seed)
        rows.append({"dataset": ds.name, "suite": ds.suite, "task": ds.task, "rows": len(train),
                     "metric": HEADLINE[ds.task], **{f"{k}_on": v for k, v in on.items()},
                     **{f"{k}_off": v for k, v in off.items()}})
        print(f"| {ds.name} | {ds.task} | {len(train)} | {HEADLINE[ds.task]} | {on['holdout']:.4f} | "
              f"{off['holdout']:.4f} | {on['holdout'] - off['holdout']:+.4f} | {on['cv']:.4f} | {off['cv']:.4f} | "
              f"{on['trees']} / {off['trees']} | {on['tune_s']:.0f} / {off['tune_s']:.0f} |", flush=True)
        if args.out:
            pd.DataFrame(rows).to_csv(args.out, index=False)
    if rows:
        frame = pd.DataFrame(rows)
        diff = frame["holdout_on"] - frame["holdout_off"]
        print(f"\nholdout on − off: mean {diff.mean():+.4f}, wins / ties / losses (tie within 0.002) "
              f"{(diff > 0.002).sum()} / {(diff.abs() <= 0.002).sum()} / {(diff < -0.002).sum()}; "
              f"tuning time on / off: {frame['tune_s_on'].sum() / frame['tune_s_off'].sum():.2f}")


if __name__ == "__main__":
    main()
