"""Do keras_mlp fits slow down or leak memory as a study goes on?

Fits the same configuration (the family's defaults: 2 x 64 relu, Adam 1e-3,
dropout 0.1, batch 32, early stopping) N times in a row on scikit-learn's
breast_cancer data (standardised, a fixed 80 % training split), as a study's
trials would, and prints per fit: wall time, CPU time of this process, epochs
run, resident memory (RSS) after the fit. Then the first-5 vs last-5 means and
the RSS growth. The seed is fixed, so every fit runs the same number of epochs
and the times are comparable.

    python -m benchmarks.keras_fit_time                 # 20 fits, 1 thread
    python -m benchmarks.keras_fit_time --fits 40 --n-jobs 2
    python -m benchmarks.keras_fit_time --collect       # gc.collect() after each fit
    python -m benchmarks.keras_fit_time --without-leak-fix   # TensorFlow's leak, for comparison

Without --collect, RSS saw-tooths: the traced graphs of finished fits are
reference cycles that Python's collector frees every few fits (those fits are
slower: the full collection runs inside them).

Wall time depends on what else the machine runs; CPU time much less so.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import time

import numpy as np


def rss_mib() -> float:
    """Current resident set size of this process, in MiB."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # not Linux: fall back to the peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if os.uname().sysname == "Darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--collect", action="store_true", help="gc.collect() after each fit")
    ap.add_argument("--without-leak-fix", action="store_true",
                    help="disable the TensorFlow gradient-registry leak workaround")
    args = ap.parse_args(argv)

    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from search_spaces import SpaceContext, keras_mlp
    from tuner.models.keras_mlp import configure_tensorflow, tf_compat

    if args.without_leak_fix:
        tf_compat.release_traced_step_gradients = lambda snapshot: None

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    ctx = SpaceContext(task="binary", n_rows=len(Xtr), n_features=X.shape[1], n_classes=2,
                       seed=args.seed, n_jobs=args.n_jobs)
    params = keras_mlp.defaults(ctx)

    t0 = time.perf_counter()
    keras, tf = configure_tensorflow(args.n_jobs)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}: import {time.perf_counter() - t0:.1f} s; "
          f"threads intra={tf.config.threading.get_intra_op_parallelism_threads()} "
          f"inter={tf.config.threading.get_inter_op_parallelism_threads()}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"config: {params}")
    rss_start = rss_mib()
    print(f"RSS before the first fit: {rss_start:.0f} MiB\n")
    print(" fit   wall s   cpu s  epochs   ms/epoch   RSS MiB   test AUC")

    walls, cpus, rss, epochs = [], [], [], []
    for i in range(args.fits):
        est = keras_mlp.SPACE.build(params, ctx)
        w0, c0 = time.perf_counter(), time.process_time()
        est.fit(Xtr, ytr)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        auc = roc_auc_score(yte, est.predict_proba(Xte)[:, 1])
        len_epochs = est.n_epochs_
        del est  # the driver drops each fold's model too
        if args.collect:
            gc.collect()
        walls.append(wall)
        cpus.append(cpu)
        epochs.append(len_epochs)
        rss.append(rss_mib())
        print(f"{i + 1:4d} {wall:8.2f} {cpu:7.2f} {len_epochs:7d} {1000 * wall / len_epochs:10.1f}"
              f" {rss[-1]:9.0f} {auc:10.4f}", flush=True)

    k = min(5, len(walls) // 2)
    if k:
        first_w, last_w = statistics.mean(walls[:k]), statistics.mean(walls[-k:])
        first_c, last_c = statistics.mean(cpus[:k]), statistics.mean(cpus[-k:])
        med_f, med_l = statistics.median(walls[:k]), statistics.median(walls[-k:])
        print(f"\nwall s/fit: first {k} mean {first_w:.2f}, last {k} mean {last_w:.2f} (x{last_w / first_w:.2f}); "
              f"medians {med_f:.2f} / {med_l:.2f} (x{med_l / med_f:.2f})")
        print(f"cpu  s/fit: first {k} mean {first_c:.2f}, last {k} mean {last_c:.2f} (x{last_c / first_c:.2f})")
        print(f"(fit 1 includes TensorFlow's one-off runtime start; fits 2-{k}: "
              f"wall {statistics.mean(walls[1:k]) if k > 1 else walls[0]:.2f} s)")
    if len(rss) >= 2:
        slope = np.polyfit(np.arange(len(rss) - 1), rss[1:], 1)[0] if len(rss) > 2 else rss[1] - rss[0]
        print(f"RSS: {rss_start:.0f} MiB before, {rss[0]:.0f} after fit 1, {rss[-1]:.0f} after fit {len(rss)} "
              f"(growth after fit 1: {rss[-1] - rss[0]:+.0f} MiB, trend {slope:+.2f} MiB/fit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
