"""Labels and probabilities a user can act on (#32): a binary model's calibration and decision
threshold, measured on the holdout.

For every binary table of the suites, the seed's outer split (``benchmarks.suites.split``), then the
public path with default settings: ``tuner.tune(train, metric=M, timeout=budget)`` ->
``tuner.export`` -> ``tuner.load`` -> ``predict`` / ``predict_proba`` on the holdout. ``M`` is the
default metric (ROC-AUC) and ``f1``. Recorded per table and metric:

- label accuracy and F1 of the model's labels, and of its own labels without a tuned cut
  (``predict(threshold=c)`` with ``c`` the calibrated probability its uncalibrated 0.5 maps to, 0.5
  for a model without a map: the run without a tuned threshold);
- the majority-class rate of the holdout, the share of predicted positives against the true share;
- the expected calibration error of the positive class' probability (10 equal-width bins, weighted
  by their rows) as the model answers, and of the model under its map (``ece_uncalibrated``);
- with ``--flaml`` (default metric only): FLAML's ``AutoML`` on the same split, with its defaults and
  85 % of the budget as its search time (as ``benchmarks.peers.flaml_peer``), its label accuracy and ECE.

    python -m benchmarks.decisions --budget 30 --flaml --out benchmarks/decisions_30s.csv
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.suites import TARGET, list_datasets, load_dataset, split

ECE_BINS = 10


def expected_calibration_error(positive: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width probability bins of (rows in bin / rows) x |mean probability - positive share|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            total += rows.mean() * abs(proba[rows].mean() - positive[rows].mean())
    return float(total)


def one(ds, metric: str | None, budget: float, seed: int) -> dict:
    import tuner

    train, test = split(load_dataset(ds), "binary", seed, None)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'runs.db'}"
        started = time.monotonic()
        tuner.tune(train, target=TARGET, task="binary", metric=metric, timeout=budget, seed=seed, storage=storage,
                   run="d")
        model = tuner.export(str(Path(tmp) / "model"), storage=storage, run="d")
        wall = time.monotonic() - started
        X = test.drop(columns=[TARGET])
        calibration = model.card.get("calibration") or {}
        own_cut = 0.5
        if calibration.get("method"):  # the cut its own 0.5 stands for, on the calibrated probabilities
            from tuner.models.calibrated import apply_map

            own_cut = float(apply_map(calibration["method"], calibration["parameters"], [[0.5, 0.5]])[0, 1])
        labels, plain = model.predict(X), model.predict(X, threshold=own_cut)
        proba = model.predict_proba(X).iloc[:, 1].to_numpy()
        from tuner.models.calibrated import unwrap

        prepared, _ = model.prepare(X)
        uncalibrated = np.asarray(unwrap(model.pipeline).predict_proba(prepared))[:, 1]
    y = test[TARGET].astype(str).to_numpy()
    positive = str(model.classes[1])
    truth = y == positive
    from sklearn.metrics import f1_score

    def f1(pred):
        return f1_score(truth, pred.astype(str) == positive, zero_division=0)

    decision = model.card.get("decision") or {}
    return {
        "suite": ds.suite, "dataset": ds.name, "metric": metric or "default", "rows": len(train) + len(test),
        "positive_share": float(truth.mean()), "majority": float(max(truth.mean(), 1 - truth.mean())),
        "model": model.card["family"], "threshold": decision.get("threshold"), "tuned": decision.get("tuned"),
        "cut_metric": decision.get("metric"), "calibration": calibration.get("method"),
        "accuracy": float((labels.astype(str) == y).mean()), "accuracy_own": float((plain.astype(str) == y).mean()),
        "f1": f1(labels), "f1_own": f1(plain),
        "predicted_positive": float((labels.astype(str) == positive).mean()),
        "predicted_positive_own": float((plain.astype(str) == positive).mean()),
        "ece": expected_calibration_error(truth.astype(float), proba),
        "ece_uncalibrated": expected_calibration_error(truth.astype(float), uncalibrated), "wall_s": round(wall, 1),
    }


def flaml_on(ds, budget: float, seed: int) -> dict:
    """FLAML's AutoML with its defaults on the same split: label accuracy and ECE of its positive class."""
    from flaml import AutoML

    train, test = split(load_dataset(ds), "binary", seed, None)
    automl = AutoML()
    automl.fit(train.drop(columns=[TARGET]), train[TARGET].astype(str), task="classification",
               time_budget=0.85 * budget, seed=seed, verbose=0, n_jobs=-1)
    X, y = test.drop(columns=[TARGET]), test[TARGET].astype(str).to_numpy()
    proba = automl.predict_proba(X)
    positive = sorted(np.unique(train[TARGET].astype(str)))[1]
    column = list(automl.classes_).index(positive)
    return {"flaml_accuracy": float((np.asarray(automl.predict(X)).astype(str) == y).mean()),
            "flaml_ece": expected_calibration_error((y == positive).astype(float), np.asarray(proba)[:, column]),
            "flaml_model": automl.best_estimator}


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decisions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="both")
    p.add_argument("--datasets", help="comma-separated names [default: every binary table]")
    p.add_argument("--budget", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default="default,f1", help="comma-separated; 'default' is the task's default")
    p.add_argument("--flaml", action="store_true", help="also FLAML's AutoML on the same split (default metric rows)")
    p.add_argument("--out", type=Path, default=Path("decisions.csv"))
    args = p.parse_args(argv)
    names = args.datasets.split(",") if args.datasets else None
    rows = []
    for ds in list_datasets(args.suite, names, {"pmlb": None, "mixed": None}):
        if ds.task != "binary":
            continue
        for metric in args.metrics.split(","):
            row = one(ds, None if metric == "default" else metric, args.budget, args.seed)
            if args.flaml and metric == "default":
                row.update(flaml_on(ds, args.budget, args.seed))
            rows.append(row)
            print(f"{ds.name:16s} {row['metric']:8s} acc {row['accuracy']:.4f} (own: {row['accuracy_own']:.4f}, "
                  f"majority {row['majority']:.4f})  f1 {row['f1']:.4f} (own: {row['f1_own']:.4f})  "
                  f"ece {row['ece']:.4f} (own {row['ece_uncalibrated']:.4f}"
                  + (f", flaml {row['flaml_ece']:.4f}" if "flaml_ece" in row else "") + ")  "
                  f"cal {row['calibration']}  cut {row['threshold']} tuned {row['tuned']}", flush=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
