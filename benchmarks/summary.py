"""What ``benchmarks.compare`` makes of its runs: normalised scores, ranks, head-to-head
counts and the spread of a peer's score across holdout seeds.

A *task* here is one dataset × holdout seed: every peer ran on the same split of it.

- normalised score: (score − constant predictor) / (best peer − constant predictor) on the
  task, the constant predictor scoring 0.5 ROC-AUC, the holdout share of the training
  majority class in accuracy (not the worst peer), and 0 R²; a failed run counts 0;
- rank: peers ranked by score on each task, 1 = best; scores within ``TIE`` of the best
  of a group share the group's mean rank; failed runs share the last places;
- wins / ties / losses of a peer against another: over the tasks both ran, a score
  higher by more than ``TIE`` wins, within ``TIE`` ties; a failed run loses to one that
  did not fail, two failed runs are not counted.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

TIE = 0.002
ON_TIME = 1.10  # a run is on time when its wall time is within this factor of the budget
TASK_KEYS = ["dataset", "seed"]


def _task_keys(results: pd.DataFrame) -> list[str]:
    return [k for k in TASK_KEYS if k in results.columns]


def add_normalised(results: pd.DataFrame) -> pd.DataFrame:
    """``best`` (best score on the task) and ``normalised`` (failed runs: 0)."""
    results = results.copy()
    keys = _task_keys(results)
    ok = results["status"] == "ok"
    best = results["score"].where(ok).groupby([results[k] for k in keys]).transform("max")
    results["best"] = best
    span = results["best"] - results["constant"]
    norm = (results["score"] - results["constant"]) / span.where(span > 1e-12)
    results["normalised"] = np.where(ok, norm, 0.0).astype(float)
    return results


def rank_scores(scores: dict[str, float], tie: float = TIE) -> dict[str, float]:
    """Ranks (1 = best) of peers on one task; ``nan`` = failed.

    Going down from the best score, a peer within ``tie`` of the first peer of the current
    group joins it; a group shares the mean of its places. Failed runs share the last places.
    """
    ok = sorted(((s, p) for p, s in scores.items() if s is not None and np.isfinite(s)), reverse=True)
    failed = [p for p, s in scores.items() if s is None or not np.isfinite(s)]
    ranks: dict[str, float] = {}
    place = 1
    i = 0
    while i < len(ok):
        j = i
        while j + 1 < len(ok) and ok[i][0] - ok[j + 1][0] <= tie + 1e-12:
            j += 1
        shared = place + (j - i) / 2
        for k in range(i, j + 1):
            ranks[ok[k][1]] = shared
        place += j - i + 1
        i = j + 1
    for p in failed:
        ranks[p] = place + (len(failed) - 1) / 2
    return ranks


def ranks(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its ``rank`` among the peers that ran the same task."""
    rows = []
    for _, g in results.groupby(_task_keys(results), sort=False):
        scores = {r["peer"]: (r["score"] if r["status"] == "ok" else np.nan) for _, r in g.iterrows()}
        for peer, rank in rank_scores(scores).items():
            rows.append({**{k: g[k].iloc[0] for k in _task_keys(results)}, "peer": peer, "rank": rank,
                         "n_peers": len(scores)})
    return pd.DataFrame(rows, columns=[*_task_keys(results), "peer", "rank", "n_peers"])


def head_to_head(results: pd.DataFrame, a: str, b: str) -> tuple[int, int, int]:
    """(wins, ties, losses) of ``a`` against ``b`` over the tasks both ran; a failed run loses."""
    w = t = l = 0
    for _, g in results.groupby(_task_keys(results), sort=False):
        ra, rb = g[g["peer"] == a], g[g["peer"] == b]
        if ra.empty or rb.empty:
            continue
        ok_a, ok_b = ra["status"].iloc[0] == "ok", rb["status"].iloc[0] == "ok"
        if not ok_a and not ok_b:
            continue
        if ok_a and ok_b:
            d = ra["score"].iloc[0] - rb["score"].iloc[0]
            w, t, l = (w + 1, t, l) if d > TIE else (w, t, l + 1) if d < -TIE else (w, t + 1, l)
        else:
            w, l = (w + 1, l) if ok_a else (w, l + 1)
    return w, t, l


def wtl_matrix(results: pd.DataFrame, peers: list[str]) -> pd.DataFrame:
    """Row peer's wins / ties / losses against the column peer, as ``"w / t / l"``."""
    cells = {a: {b: ("—" if a == b else "%d / %d / %d" % head_to_head(results, a, b)) for b in peers} for a in peers}
    return pd.DataFrame.from_dict(cells, orient="index")[peers]


def seed_spread(results: pd.DataFrame, peer: str) -> pd.DataFrame:
    """Per dataset: the peer's headline score across holdout seeds (ok runs only):
    ``n`` seeds, ``mean``, ``std`` (sample std, ddof 1; nan with one seed), ``failed`` runs."""
    r = results[results["peer"] == peer]
    rows = []
    for ds, g in r.groupby("dataset", sort=False):
        s = g.loc[g["status"] == "ok", "score"].astype(float)
        rows.append({"dataset": ds, "n": len(s), "mean": s.mean() if len(s) else np.nan,
                     "std": s.std(ddof=1) if len(s) > 1 else np.nan, "failed": int((g["status"] != "ok").sum())})
    return pd.DataFrame(rows, columns=["dataset", "n", "mean", "std", "failed"])


def peer_summary(results: pd.DataFrame, peers: list[str]) -> pd.DataFrame:
    """Per peer: runs, failures, mean rank, mean normalised score, best / shared best, time and memory."""
    rk = ranks(results)
    rows = []
    ok_runs = results[results["status"] == "ok"]
    for peer in peers:
        r = results[results["peer"] == peer]
        ok = r[r["status"] == "ok"]
        wins = ties = 0
        for _, g in ok_runs.groupby(_task_keys(results), sort=False):
            top = g[g["score"] >= g["score"].max() - TIE]["peer"].tolist()
            if peer in top:
                wins, ties = (wins + 1, ties) if len(top) == 1 else (wins, ties + 1)
        ratio = r["wall_s"] / r["budget_s"]
        rows.append({
            "peer": peer, "runs": len(r), "ok": len(ok), "failed": int((r["status"] != "ok").sum()),
            "mean_rank": rk.loc[rk["peer"] == peer, "rank"].mean(),
            "mean_normalised": r["normalised"].mean(), "wins": wins, "shared_best": ties,
            "on_time": f"{int(r['on_time'].astype(bool).sum())}/{len(r)}", "mean_wall_s": r["wall_s"].mean(),
            "max_wall_over_budget": ratio.max() if len(r) else np.nan,
            "median_peak_mb": r["peak_mb"].median(), "max_peak_mb": r["peak_mb"].max(),
        })
    return pd.DataFrame(rows)


def driver_overheads(rows: pd.DataFrame) -> pd.Series:
    """Per run (``dataset`` or ``dataset/seed<k>``), the ``driver_overhead`` a peer reported (tuner does)."""
    values = {}
    several = "seed" in rows.columns and rows.groupby("dataset")["seed"].nunique().max() > 1 if len(rows) else False
    for _, r in rows.iterrows():
        try:
            info = json.loads(r.get("info") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(info, dict) and info.get("driver_overhead") is not None:
            key = f"{r['dataset']}/seed{int(r['seed'])}" if several else r["dataset"]
            values[key] = float(info["driver_overhead"])
    return pd.Series(values, dtype=float)
