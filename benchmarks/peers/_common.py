"""What every peer of ``benchmarks.compare`` shares: its command line and its output file.

A peer is a program run in its own process::

    python -m benchmarks.peers.<peer> --train train.parquet --test test_X.parquet --task binary \\
        --metric roc_auc --budget 60 --deadline <epoch seconds> --seed 0 --n-jobs 2 \\
        --workdir <scratch dir> --out preds.json

``train.parquet`` holds the features and the ``target`` column; ``test_X.parquet`` holds
the holdout features only (the peer never sees holdout labels). ``--deadline`` is the
wall-clock time (``time.time()``) by which the whole process, final refit and prediction
included, must be done: it is set by the parent just before it starts the process, so
interpreter start-up and imports are charged to the peer.

The output (``--out``, JSON) holds holdout predictions, which the parent scores:

- classification: ``labels`` (one predicted label per holdout row, as in the training
  data) and, when the model has them, ``proba`` (rows × classes) with ``proba_classes``
  (the label of each column), or for a binary model without probabilities ``decision``
  (one score per row, larger = more likely ``proba_classes[1]``)
- regression: ``values``
- ``info``: anything worth reporting (the chosen model, number of trials, ...)

A peer that cannot produce predictions exits non-zero; the parent reports it as failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

TARGET = "target"


def parse_args(argv=None, description: str = "") -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path, help="holdout features (no target)")
    p.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    p.add_argument("--metric", required=True, help="roc_auc, accuracy or r2")
    p.add_argument("--budget", required=True, type=float, help="seconds for the whole process")
    p.add_argument("--deadline", type=float, default=None,
                   help="epoch seconds by which everything must be done [default: now + budget]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    if args.deadline is None:
        args.deadline = time.time() + args.budget
    if args.workdir is None:
        args.workdir = args.out.parent
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def remaining(args) -> float:
    """Seconds left before the deadline."""
    return args.deadline - time.time()


def elapsed(args) -> float:
    """Seconds since the parent started this process."""
    return round(time.time() - (args.deadline - args.budget), 2)


def load(args):
    """(X_train, y_train, X_test) as pandas objects."""
    import pandas as pd

    train = pd.read_parquet(args.train)
    X_test = pd.read_parquet(args.test)
    return train.drop(columns=[TARGET]), train[TARGET], X_test


def _native(values) -> list:
    return np.asarray(values).tolist()


def write_predictions(args, *, labels=None, proba=None, proba_classes=None, decision=None, values=None,
                      info: dict | None = None) -> None:
    info = dict(info or {})
    info.setdefault("startup_s", getattr(args, "startup_s", None))
    info["elapsed_at_write_s"] = elapsed(args)
    out = {"task": args.task, "info": info}
    if args.task == "regression":
        out["values"] = [float(v) for v in np.asarray(values, dtype=float)]
    else:
        out["labels"] = _native(labels)
        if proba is not None:
            out["proba"] = np.asarray(proba, dtype=float).tolist()
            out["proba_classes"] = _native(proba_classes)
        if decision is not None:
            out["decision"] = np.asarray(decision, dtype=float).ravel().tolist()
            out["proba_classes"] = _native(proba_classes)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, default=str))
    os.replace(tmp, args.out)  # the parent never reads a half-written file


def main(run: Callable[[argparse.Namespace], None], description: str = "") -> None:
    """Parse the arguments, run the peer, exit 1 with the traceback on stderr on any error."""
    args = parse_args(description=description)
    args.startup_s = elapsed(args)  # interpreter start-up
    try:
        run(args)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
