"""Learn each family's portfolio of starting configurations offline (the zero-shot idea of
FLAML and AutoGluon): configurations that did well across many tables, tried right after the
family's defaults and before TPE has anything to go on.

    python -m benchmarks.build_portfolio --families xgboost,hist_gradient_boosting,random_forest \\
        --candidates 16 --size 3 --max-rows 1000 --out search_spaces/_portfolios.py

What it does, per family and task group (classification: binary + multiclass; regression):

1. candidates: the family's defaults plus ``--candidates`` configurations drawn at random
   (seeded) from its search space, for a typical table of the group;
2. every candidate is cross-validated (``--cv`` folds, tuner's own folds, preprocessing
   defaults, tuner's default metric of the task) on every table of ``../shared/datasets/pmlb``
   and ``../shared/datasets/mixed`` of that group, each subsampled to ``--max-rows`` rows;
3. per table the scores are normalised to [0, 1] (worst candidate 0, best 1; a failed fit 0);
4. greedy selection: starting from the defaults (which always run first), add the candidate
   that most raises the mean over tables of the best normalised score among those chosen,
   ``--size`` times.

It also reports a leave-one-table-out estimate (the portfolio chosen without a table, scored on
that table) against the defaults alone, so that the gain is not only measured on the tables it
was learned from. The raw scores go to ``--scores`` (CSV) and the result, with its provenance,
to ``--out`` (a Python module read by ``search_spaces.portfolio``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SUITES = {"pmlb": ".tsv.gz", "mixed": ".csv.gz"}
GROUPS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}


def _suite_dir(suite: str) -> Path | None:
    for base in (REPO.parent / "shared/datasets", Path("/work/shared/datasets")):
        if (base / suite / "INDEX.tsv").exists():
            return base / suite
    return None


def tables(max_rows: int, seed: int, only: set[str] | None = None):
    """(name, task, prepared tuner Dataset) of every table of both suites, subsampled."""
    from sklearn.model_selection import train_test_split

    from tuner.data.dataset import prepare, read_table

    for suite, ext in SUITES.items():
        folder = _suite_dir(suite)
        if folder is None:
            print(f"  ({suite} suite not found: skipped)", file=sys.stderr)
            continue
        index = pd.read_csv(folder / "INDEX.tsv", sep="\t")
        for _, row in index.iterrows():
            name, task = str(row["name"]), str(row["task"])
            if only and name not in only:
                continue
            target = str(row.get("target_column", "target"))
            frame = read_table(str(folder / f"{name}{ext}"))
            if len(frame) > max_rows:
                strat = frame[target] if task != "regression" else None
                try:
                    frame, _ = train_test_split(frame, train_size=max_rows, random_state=seed, stratify=strat)
                except ValueError:  # a class too rare to stratify
                    frame, _ = train_test_split(frame, train_size=max_rows, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield name, task, prepare(frame.reset_index(drop=True), target, task, source=name)


def candidates(family: str, group: str, n: int, seed: int) -> list[dict]:
    """The family's defaults, then ``n`` distinct random configurations of its space."""
    import optuna

    import search_spaces
    from search_spaces import SpaceContext

    space = search_spaces.get_space(family)
    task = "binary" if group == "classification" else "regression"
    ctx = SpaceContext(task=task, n_rows=700, n_features=12, n_classes=2 if task == "binary" else 0, seed=seed)
    out = [dict(space.defaults(ctx))]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    seen = {json.dumps(out[0], sort_keys=True, default=str)}
    while len(out) < n + 1:
        params = space.suggest(study.ask(), ctx)
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


def cv_score(family: str, params: dict, ds, cv: int, seed: int) -> float:
    """Mean cross-validated score, sign-flipped so that larger is better; NaN when it fails."""
    import search_spaces
    from tuner.data import preprocessing
    from tuner.data.schema import Schema
    from tuner.evaluation.cross_validation import cross_validate
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.evaluation.folds import make_folds
    from tuner.search.run_setup import make_config

    config = make_config(ds, run="portfolio", metric=None, models=[family], cv=cv, seed=seed)
    ctx = space_context(config, 1)
    space = search_spaces.get_space(family)
    full = dict(params)
    full.update(preprocessing.defaults(ctx, space.preprocessing, Schema.from_dict(config.schema), config.y_min))
    try:
        est = build_estimator(config, family, full, ctx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folds = make_folds(ds.y, config.task, cv, seed)
            results = cross_validate(est, ds.X, ds.y, folds, config.task, len(config.classes))
        value = float(np.mean([r.scores[config.metric] for r in results]))
    except Exception as exc:  # noqa: BLE001 — a candidate that cannot fit a table scores as the worst
        print(f"    {family} failed: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
        return math.nan
    return value if config.direction == "maximize" else -value


def normalise(scores: np.ndarray) -> np.ndarray:
    """candidates × tables → per table: worst 0, best 1 (failed: 0; all equal: 1)."""
    out = np.zeros_like(scores)
    for j in range(scores.shape[1]):
        col = scores[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        lo, hi = col[ok].min(), col[ok].max()
        out[ok, j] = 1.0 if hi == lo else (col[ok] - lo) / (hi - lo)
    return out


def greedy(norm: np.ndarray, size: int, first: int = 0) -> list[int]:
    """Indices chosen: ``first`` (the defaults), then ``size`` more, each raising the mean best most."""
    chosen = [first]
    best = norm[first].copy()
    for _ in range(size):
        if norm.shape[1] == 0:
            break
        gains = [np.maximum(best, norm[i]).mean() if i not in chosen else -1.0 for i in range(len(norm))]
        pick = int(np.argmax(gains))
        if gains[pick] <= best.mean() + 1e-12:
            break  # nothing adds anything
        chosen.append(pick)
        best = np.maximum(best, norm[pick])
    return chosen


def leave_one_out(norm: np.ndarray, size: int) -> tuple[float, float]:
    """(mean over tables of the defaults' normalised score, of the best among a portfolio chosen
    without that table): the portfolio's gain on a table it has not seen."""
    alone, with_portfolio = [], []
    for j in range(norm.shape[1]):
        others = np.delete(norm, j, axis=1)
        chosen = greedy(others, size)
        alone.append(norm[0, j])
        with_portfolio.append(norm[chosen, j].max())
    return float(np.mean(alone)), float(np.mean(with_portfolio))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_module(path: Path, portfolios: dict, provenance: dict) -> None:
    body = (
        '"""Starting configurations per family, learned offline by ``python -m benchmarks.build_portfolio``\n'
        "(provenance below); enqueued after each family's defaults (``search_spaces.portfolio``).\n"
        'Generated: edit by re-running the script, not by hand."""\n\n'
        f"PROVENANCE = {json.dumps(provenance, indent=4, sort_keys=True)}\n\n"
        f"PORTFOLIOS = {json.dumps(portfolios, indent=4, sort_keys=True)}\n"
    )
    body = body.replace(": null", ": None").replace(": true", ": True").replace(": false", ": False")
    path.write_text(body, encoding="utf-8")


def _keep_other_families(path: Path, portfolios: dict, provenance: dict) -> tuple[dict, dict]:
    """Families in an existing ``path`` that this invocation did not build stay, with their
    provenance (under ``earlier``) and their summary."""
    if not path.exists():
        return portfolios, provenance
    import runpy

    old = runpy.run_path(str(path))
    kept = {f: g for f, g in old.get("PORTFOLIOS", {}).items() if f not in portfolios}
    if not kept:
        return portfolios, provenance
    old_prov = old.get("PROVENANCE", {})
    earlier = {f: e for f, e in old_prov.get("earlier", {}).items() if f in kept}
    for family in kept:
        earlier.setdefault(family, {k: v for k, v in old_prov.items() if k not in ("earlier", "summary")})
        if earlier[family].get("tables") == provenance["tables"]:
            earlier[family]["tables"] = "the same tables as above"
    summary = {k: v for k, v in old_prov.get("summary", {}).items() if k.split("/")[0] in kept}
    return {**kept, **portfolios}, {**provenance, "earlier": earlier, "summary": {**summary, **provenance["summary"]}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default="xgboost,hist_gradient_boosting,random_forest")
    p.add_argument("--candidates", type=int, default=16)
    p.add_argument("--size", type=int, default=3, help="configurations chosen per family and task group")
    p.add_argument("--max-rows", type=int, default=1000)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--datasets", default="", help="comma-separated table names (default: every table)")
    p.add_argument("--scores", type=Path, default=REPO / "benchmarks/portfolio_scores.csv")
    p.add_argument("--out", type=Path, default=REPO / "search_spaces/_portfolios.py")
    args = p.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    only = {d.strip() for d in args.datasets.split(",") if d.strip()} or None
    started = time.time()
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=1)  # one core, like a trial of a 1-thread worker; OpenMP does not spin
    data = list(tables(args.max_rows, args.seed, only))
    print(f"{len(data)} tables", file=sys.stderr)
    rows, portfolios, summary = [], {}, {}
    for family in families:
        for group in ("classification", "regression"):
            group_data = [(n, t, ds) for n, t, ds in data if GROUPS[t] == group]
            if not group_data:
                continue
            cands = candidates(family, group, args.candidates, args.seed)
            scores = np.full((len(cands), len(group_data)), math.nan)
            for j, (name, task, ds) in enumerate(group_data):
                t0 = time.time()
                for i, params in enumerate(cands):
                    scores[i, j] = cv_score(family, params, ds, args.cv, args.seed)
                    rows.append({"family": family, "group": group, "table": name, "candidate": i,
                                 "score": scores[i, j], "params": json.dumps(params, default=str)})
                print(f"  {family} {group} {name}: {time.time() - t0:.1f}s", file=sys.stderr)
                pd.DataFrame(rows).to_csv(args.scores, index=False)
            norm = normalise(scores)
            chosen = greedy(norm, args.size)
            alone, loo = leave_one_out(norm, args.size)
            portfolios.setdefault(family, {})[group] = [cands[i] for i in chosen[1:]]
            summary[f"{family}/{group}"] = {
                "tables": len(group_data), "candidates": len(cands), "chosen": chosen[1:],
                "mean_normalised_defaults": round(float(norm[0].mean()), 4),
                "mean_normalised_with_portfolio": round(float(norm[chosen].max(axis=0).mean()), 4),
                "leave_one_table_out_defaults": round(alone, 4),
                "leave_one_table_out_with_portfolio": round(loo, 4),
            }
            print(f"{family}/{group}: {summary[f'{family}/{group}']}", file=sys.stderr)
    provenance = {
        "script": "benchmarks/build_portfolio.py", "commit": _commit(),
        "built": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.build_portfolio " + " ".join(argv if argv is not None else sys.argv[1:]),
        "tables": sorted(n for n, _, _ in data), "max_rows": args.max_rows, "cv": args.cv, "seed": args.seed,
        "seconds": round(time.time() - started), "summary": summary,
    }
    portfolios, provenance = _keep_other_families(args.out, portfolios, provenance)
    write_module(args.out, portfolios, provenance)
    print(f"wrote {args.out} and {args.scores}", file=sys.stderr)


if __name__ == "__main__":
    main()
