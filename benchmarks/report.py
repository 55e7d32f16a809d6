"""``results.md`` and ``results.png`` of ``benchmarks.compare``, from its results table."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.summary import ON_TIME, TIE, driver_overheads, head_to_head, peer_summary, seed_spread, wtl_matrix


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)


def _md_table(frame: pd.DataFrame, index: str | None = None) -> str:
    if index is not None:
        frame = frame.reset_index(names=index)
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("tuner", "flaml", "optuna", "scikit-learn", "xgboost", "lightgbm", "pandas", "numpy"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def _peer_versions(results: pd.DataFrame) -> str:
    """Versions a peer reported in its info (``version``: e.g. AutoGluon in its own venv)."""
    import json

    seen = {}
    for _, r in results.iterrows():
        try:
            info = json.loads(r.get("info") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(info, dict) and info.get("version"):
            seen[r["peer"]] = str(info["version"])
    return "".join(f"; {p} ran {v}" for p, v in seen.items())


def _scores_table(results: pd.DataFrame, peers: list[str]) -> str:
    wide = []
    for (ds, seed), g in results.groupby(["dataset", "seed"], sort=False):
        rec = {"suite": g["suite"].iloc[0], "dataset": ds, "seed": int(seed), "task": g["task"].iloc[0],
               "rows": int(g["rows"].iloc[0]), "metric": g["metric"].iloc[0]}
        best = g.loc[g["status"] == "ok", "score"].max()
        for p in peers:
            r = g[g["peer"] == p]
            if r.empty:
                rec[p] = ""
            elif r["status"].iloc[0] != "ok":
                rec[p] = r["status"].iloc[0]
            else:
                s = r["score"].iloc[0]
                rec[p] = f"**{s:.4f}**" if s >= best - TIE else f"{s:.4f}"
        rec["constant"] = _fmt(float(g["constant"].iloc[0]))
        wide.append(rec)
    return _md_table(pd.DataFrame(wide))


def _detail_table(results: pd.DataFrame) -> str:
    detail = results.assign(
        **{"F1 / RMSE": [_fmt(r["rmse"] if r["task"] == "regression" else r["f1"]) for _, r in results.iterrows()],
           "score": results["score"].map(_fmt), "normalised": results["normalised"].map(lambda v: _fmt(v, 3)),
           "wall_s": results["wall_s"].map(lambda v: _fmt(v, 1)), "peak_mb": results["peak_mb"].map(lambda v: _fmt(v, 0)),
           "error": results["error"].map(lambda e: (e[:120] + "…") if len(e) > 120 else e)}
    )[["dataset", "seed", "peer", "status", "metric", "score", "F1 / RMSE", "normalised", "wall_s", "peak_mb",
       "model", "error"]]
    return _md_table(detail)


def spread_table(results: pd.DataFrame, peers: list[str]) -> tuple[str, dict[str, float]]:
    """Per dataset, each peer's headline score across seeds as ``mean ± std (n)``; and per
    peer the mean of those stds over the datasets with at least two ok seeds."""
    per_peer = {p: seed_spread(results, p).set_index("dataset") for p in peers}
    datasets = list(dict.fromkeys(results["dataset"]))
    rows = []
    for ds in datasets:
        rec = {"dataset": ds}
        for p in peers:
            s = per_peer[p].loc[ds] if ds in per_peer[p].index else None
            if s is None or s["n"] == 0:
                rec[p] = "failed" if s is not None else ""
                continue
            txt = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["n"] > 1 else "") + f" ({int(s['n'])})"
            rec[p] = txt + (f", {int(s['failed'])} failed" if s["failed"] else "")
        rows.append(rec)
    mean_std = {p: float(per_peer[p]["std"].mean()) if per_peer[p]["std"].notna().any() else np.nan for p in peers}
    rows.append({"dataset": "**mean std**", **{p: _fmt(v) for p, v in mean_std.items()}})
    return _md_table(pd.DataFrame(rows, columns=["dataset", *peers])), mean_std


def _summary_section(results: pd.DataFrame, peers: list[str], title: str) -> list[str]:
    present = [p for p in peers if p in set(results["peer"])]
    n_tasks = results.groupby(["dataset", "seed"]).ngroups
    n_ds = results["dataset"].nunique()
    lines = [f"### {title}: {n_ds} dataset{'s' * (n_ds != 1)}, {n_tasks} dataset × seed task{'s' * (n_tasks != 1)}", ""]
    summary = peer_summary(results, present)
    show = summary.assign(
        mean_rank=summary["mean_rank"].map(lambda v: _fmt(v, 2)),
        mean_normalised=summary["mean_normalised"].map(lambda v: _fmt(v, 3)),
        mean_wall_s=summary["mean_wall_s"].map(lambda v: _fmt(v, 1)),
        max_wall_over_budget=summary["max_wall_over_budget"].map(lambda v: _fmt(v, 2)),
        median_peak_mb=summary["median_peak_mb"].map(lambda v: _fmt(v, 0)),
        max_peak_mb=summary["max_peak_mb"].map(lambda v: _fmt(v, 0)),
    ).rename(columns={"on_time": f"within {ON_TIME:.2f} × budget", "shared_best": "tied best"})
    lines += [_md_table(show), ""]
    if len(present) > 1:
        lines += ["Wins / ties / losses of the row peer against the column peer (per dataset × seed; "
                  f"tie: within {TIE}; a failed run loses):", "", _md_table(wtl_matrix(results, present), index="peer"), ""]
    others = [p for p in present if p != "tuner"]
    if "tuner" in present and others:
        lines += ["Head to head (tuner wins / ties / losses; a failed run loses):", ""]
        lines += [f"- tuner vs {o}: %d / %d / %d" % head_to_head(results, "tuner", o) for o in others]
        lines.append("")
    _, mean_std = spread_table(results, present)
    if "tuner" in present and not np.isfinite(mean_std["tuner"]):
        lines += ["Spread of tuner's headline score across holdout seeds: none measured (one seed per dataset; "
                  "`--seeds 0,1,2`).", ""]
    elif "tuner" in present:
        lines += [f"Spread of tuner's headline score across holdout seeds: mean std {_fmt(mean_std['tuner'])} "
                  "(" + ", ".join(f"{p} {_fmt(v)}" for p, v in mean_std.items() if p != "tuner") + ").", ""]
    return lines


def render_markdown(results: pd.DataFrame, peers: list[str], args, plot: Path | None) -> str:
    seeds = sorted({int(s) for s in results["seed"]})
    suites = list(dict.fromkeys(results["suite"]))
    lines = [
        f"# tuner vs peers at equal budget ({args.budget:g} s per dataset, seed and peer)", "",
        f"Peers: {', '.join(peers)}. Suites: {', '.join(suites)}. Holdout seeds {', '.join(map(str, seeds))} "
        f"(datasets of 5,000 rows or more: the first seed only, unless --all-seeds); 75/25 outer split "
        f"(stratified for classification); {args.cores} core(s); holdout scores computed by `benchmarks.compare` "
        f"from each peer's predictions. Python {platform.python_version()}; {_versions()}{_peer_versions(results)}.", "",
        "Headline: ROC-AUC (binary), accuracy (multiclass), R² (regression). "
        "Secondary: F1 (binary; macro for multiclass), RMSE (regression). "
        "Normalised = (score − constant predictor) / (best peer − constant predictor) on each dataset × seed, "
        "the constant predictor scoring 0.5 ROC-AUC, the holdout share of the training-majority class in accuracy, "
        "0 R²; a failed run counts 0. Rank: 1 = best per dataset × seed, scores within the tie margin share "
        f"their mean rank, failed runs share the last places. Ties: within {TIE}.", "",
        "## Headline score per dataset and seed", "", _scores_table(results, peers), "",
        "## Every run", "", _detail_table(results), "", "## Summary", "",
    ]
    if len(suites) > 1:
        for suite in suites:
            lines += _summary_section(results[results["suite"] == suite], peers, f"Suite {suite}")
    lines += _summary_section(results, peers, "All suites" if len(suites) > 1 else f"Suite {suites[0]}")
    table, _ = spread_table(results, [p for p in peers if p in set(results["peer"])])
    lines += ["### Spread across holdout seeds", "",
              "Headline score per dataset: mean ± sample std across seeds (number of ok seeds).", "", table, ""]
    if "tuner" in peers:
        r = results[results["peer"] == "tuner"]
        if len(r):
            on_time = r["on_time"].astype(bool)
            lines += [f"tuner runs within {ON_TIME:.2f} × budget: {int(on_time.sum())}/{len(r)} "
                      f"({on_time.mean():.0%}).", ""]
        overhead = driver_overheads(r)
        if len(overhead):
            lines += [f"tuner's driver overhead (share of its tuning wall time spent outside model fit / predict: "
                      f"sampling, pruning, storage, data preparation, leaderboard): median {overhead.median():.1%}, "
                      f"mean {overhead.mean():.1%}, max {overhead.max():.1%} ({overhead.idxmax()}); "
                      f"≤ 5 % on {int((overhead <= 0.05).sum())}/{len(overhead)} runs.", ""]
    if plot is not None:
        lines += [f"![normalised scores]({plot.name})", ""]
    return "\n".join(lines)


def plot_normalised(results: pd.DataFrame, peers: list[str], path: Path) -> Path | None:
    """Mean normalised score across seeds per dataset and peer (× = a failed run)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[bench]')", file=sys.stderr)
        return None
    datasets = list(dict.fromkeys(results["dataset"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(datasets) * max(1, len(peers)) / 2 + 2), 4.5))
    width = 0.8 / max(1, len(peers))
    x = np.arange(len(datasets))
    for i, p in enumerate(peers):
        r = results[results["peer"] == p]
        vals = r.groupby("dataset")["normalised"].mean().reindex(datasets).to_numpy(dtype=float)
        failed = (r.assign(f=r["status"] != "ok").groupby("dataset")["f"].any().reindex(datasets, fill_value=False)
                  .to_numpy(dtype=bool))
        bars = ax.bar(x + (i - (len(peers) - 1) / 2) * width, np.nan_to_num(vals), width, label=p)
        for j in np.flatnonzero(failed):
            ax.text(bars[j].get_x() + width / 2, 0.02, "×", ha="center", va="bottom", color=bars[j].get_facecolor())
    ax.set_xticks(x, datasets, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("normalised holdout score (1 = best peer)")
    low = float(np.nanmin(results["normalised"])) if len(results) and results["normalised"].notna().any() else 0.0
    ax.set_ylim(min(0.0, low - 0.05), 1.05)
    ax.axhline(0, color="grey", lw=0.5)
    n_seeds = results["seed"].nunique()
    ax.set_title(f"Normalised holdout score at {results['budget_s'].iloc[0]:g} s"
                 + (f", mean over up to {n_seeds} seeds" if n_seeds > 1 else "") + " (× = a failed run)")
    ax.legend(fontsize=8, ncols=min(4, len(peers)))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
