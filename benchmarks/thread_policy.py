"""How fast one HistGradientBoosting and one XGBoost fit are with 1, 2 and all threads, with and
without a busy process holding one core beside them, under libgomp's default wait policy and
under ``OMP_WAIT_POLICY=passive``; and ``auto``, what ``tuner`` does: as many threads as there are
free cores when the fit starts (``tuner/execution/threads.py``).

    python -m benchmarks.thread_policy                 # the table for benchmarks/RESULTS.md
    python -m benchmarks.thread_policy --repeats 5 --rows 20000

Each (policy, threads, load) cell runs in a fresh interpreter, because libgomp reads its wait
policy once, when it is loaded; the busy process is a plain ``while True`` loop at normal
priority, as another program on a laptop is. The cell is the median of ``--repeats`` fits after
one warm-up fit. Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FIT = r"""
import json, os, sys, time
import numpy as np
import threadpoolctl
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
import xgboost as xgb

model, threads, repeats, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if threads == "auto":  # what tuner does: the cores other processes leave free (tuner.execution.threads)
    from tuner.execution.threads import fit_threads
    threads = fit_threads(len(os.sched_getaffinity(0)))
threads = int(threads)
X, y = make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)

def fit():
    if model == "hgb":
        HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0).fit(X, y)
    else:
        xgb.XGBClassifier(n_estimators=200, max_depth=6, tree_method="hist", n_jobs=threads).fit(X, y)

times = []
with threadpoolctl.threadpool_limits(limits=threads, user_api="openmp"):
    fit()  # warm-up: imports, OpenMP team
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
print(json.dumps(times))
"""

BUSY = "while True: pass"


def cell(model: str, threads: int | str, policy: str | None, busy: bool, repeats: int, rows: int,
         limit_s: float) -> float | None:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    loop = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        time.sleep(0.2 if busy else 0.0)
        done = subprocess.run([sys.executable, "-c", FIT, model, str(threads), str(repeats), str(rows)],
                              env=env, capture_output=True, text=True, timeout=limit_s)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        return statistics.median(json.loads(done.stdout.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        return None  # slower than the limit: shown as "> limit"
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=300.0, help="seconds a cell may take in all")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    threads: list = [*sorted({1, 2, cores}), "auto"]
    print(f"{args.rows} rows x 20 features, 200 rounds; median of {args.repeats} fits; {cores} cores\n")
    print("| model | OMP_WAIT_POLICY | threads | quiet, s | busy loop on one core, s | slowdown |")
    print("|---|---|---|---|---|---|")
    for model in ("hgb", "xgboost"):
        for policy in (None, "passive"):
            for n in threads:
                if n == "auto" and policy:
                    continue
                quiet = cell(model, n, policy, False, args.repeats, args.rows, args.limit)
                busy = cell(model, n, policy, True, args.repeats, args.rows, args.limit)

                def show(v):
                    return f"> {args.limit:.0f} in all" if v is None else f"{v:.2f}"

                ratio = f"{busy / quiet:.1f} x" if quiet and busy else "-"
                print(f"| {model} | {policy or 'default'} | {n} | {show(quiet)} | {show(busy)} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
