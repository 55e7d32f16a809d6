"""The ensemble on pure noise (#20): its nested CV score against the best family's.

    python -m benchmarks.ensemble_noise [--seeds 0,1,2] [--rows 400] [--trials 8]

For each task and seed: a table of random numeric and categorical features with a target drawn
independently of them; every default family of the task is tuned (``--trials`` per family, 5-fold
CV), then the leaderboard's ensemble row is compared with the best family's row. An honest
ensemble scores no better than its best member beyond the fold noise (the standard error of the
best member's fold scores is printed beside the difference). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import pandas as pd


def noise_table(task: str, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 6)), columns=[f"x{i}" for i in range(6)])
    df["colour"] = rng.choice(["red", "green", "blue", "grey"], size=rows)
    df["target"] = (rng.integers(0, 2, size=rows) if task == "binary" else
                    rng.integers(0, 3, size=rows) if task == "multiclass" else rng.normal(size=rows))
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    import tuner

    print("| task | seed | metric | best family | its CV | ensemble CV | difference | SE of the best's folds |")
    print("|---|---|---|---|---|---|---|---|")
    for task in ("binary", "multiclass", "regression"):
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[task]
                board = tuner.tune(noise_table(task, args.rows, seed), target="target", task=task, metric=metric,
                                   trials=args.trials, cv=5, seed=seed, storage=f"sqlite:///{tmp}/n.db", run="noise")
                single = board[(board["model"] != "ensemble") & (board["status"] == "ok")].iloc[0]
                blended = board[board["model"] == "ensemble"]
                ens = float(blended[f"{metric}_mean"].iloc[0]) if len(blended) else float("nan")
                best = float(single[f"{metric}_mean"])
                se = float(single[f"{metric}_std"]) / np.sqrt(5)
                print(f"| {task} | {seed} | {metric} | {single['model']} | {best:.4f} | {ens:.4f} | "
                      f"{ens - best:+.4f} | {se:.4f} |", flush=True)


if __name__ == "__main__":
    main()
