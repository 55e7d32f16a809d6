"""Run tuner with a wall-clock budget on PMLB datasets and report the best CV score,
the winner and the elapsed time (the budget must hold: elapsed ≤ budget + one trial).

    python -m benchmarks.pmlb_budget --budget 60 --datasets spambase,197_cpu_act
    python -m benchmarks.pmlb_budget --budget 60 --all --out results/pmlb_budget.md
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

import tuner

DEFAULT = ["spambase", "phoneme", "vehicle", "yeast", "197_cpu_act", "1028_SWD", "560_bodyfat"]
HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def find_pmlb() -> Path:
    for c in (os.environ.get("TUNER_PMLB_DIR"), Path(__file__).resolve().parents[2] / "shared/datasets/pmlb",
              Path("/work/shared/datasets/pmlb")):
        if c and Path(c, "INDEX.tsv").exists():
            return Path(c)
    raise SystemExit("PMLB datasets not found: set TUNER_PMLB_DIR")


def run_one(pmlb: Path, name: str, task: str, budget: float, storage: str) -> dict:
    start = time.monotonic()
    board = tuner.tune(str(pmlb / f"{name}.tsv.gz"), target="target", task=task, timeout=budget,
                       storage=storage, run=name)
    elapsed = time.monotonic() - start
    best = board.iloc[0]
    metric = HEADLINE[task]
    return {
        "dataset": name, "task": task, "winner": best["model"],
        metric: f"{best[f'{metric}_mean']:.4f} ± {best[f'{metric}_std']:.4f}",
        "headline": metric, "score": round(float(best[f"{metric}_mean"]), 4),
        "trials": int(board[[c for c in board.columns if c.startswith("trials_")]].sum().sum()),
        "elapsed_s": round(elapsed, 1), "within_budget": elapsed <= budget * 1.10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--datasets", default=",".join(DEFAULT))
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pmlb = find_pmlb()
    index = pd.read_csv(pmlb / "INDEX.tsv", sep="\t").set_index("name")
    names = list(index.index) if args.all else args.datasets.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/bench.db"
        for name in names:
            row = run_one(pmlb, name, index.loc[name, "task"], args.budget, storage)
            print(row, flush=True)
            rows.append(row)
    table = pd.DataFrame(rows)[["dataset", "task", "winner", "headline", "score", "trials", "elapsed_s", "within_budget"]]
    text = table.to_string(index=False)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
