"""Rank the families of a run from what the storage holds (any process, any time)."""

from __future__ import annotations

import json
import math

import pandas as pd
from optuna.trial import TrialState

from .config import RunConfig
from .metrics import get_metric, metrics_for
from .storage import load_family_study


def _best_complete(trials, metric: str, greater: bool):
    scored = [t for t in trials if t.state == TrialState.COMPLETE and _mean(t, metric) is not None]
    if not scored:
        return None
    return (max if greater else min)(scored, key=lambda t: _mean(t, metric))


def _mean(trial, metric: str):
    m = trial.user_attrs.get("metrics", {}).get(metric)
    return None if m is None else m.get("mean")


def family_row(config: RunConfig, family: str, trials, metric: str) -> dict:
    counts = {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
    }
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if running:
        counts["running"] = running
    row = {"rank": None, "model": family, "trials": counts}
    best = _best_complete(trials, metric, get_metric(metric).greater_is_better)
    if best is None:
        reasons = [t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL]
        reasons = [r for r in reasons if r]
        if counts["failed"] and not counts["complete"]:
            row["status"] = f"all {counts['failed']} trial(s) failed; last error: {reasons[-1] if reasons else 'unknown'}"
        else:
            row["status"] = "no completed trial yet"
        row["metrics"] = {m.name: {"mean": None, "std": None} for m in metrics_for(config.task)}
        return row
    stored = best.user_attrs.get("metrics", {})
    row.update(
        status="ok",
        metrics={m.name: {"mean": stored.get(m.name, {}).get("mean"), "std": stored.get(m.name, {}).get("std")}
                 for m in metrics_for(config.task)},
        fold_scores={name: v.get("folds") for name, v in stored.items()},
        fit_time_s=best.user_attrs.get("fit_time_s"),
        predict_time_ms_per_1k=best.user_attrs.get("predict_time_ms_per_1k"),
        params=dict(best.params),
        trial_number=best.number,
    )
    return row


def build(storage, config: RunConfig, metric: str | None = None) -> list[dict]:
    """One row per family (its best trial), best first on ``metric`` (default: the run's)."""
    metric = metric or config.metric
    greater = get_metric(metric).greater_is_better
    rows = []
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        trials = study.get_trials(deepcopy=False) if study is not None else []
        rows.append(family_row(config, family, trials, metric))
    ranked = [r for r in rows if r["status"] == "ok"]
    ranked.sort(key=lambda r: r["metrics"][metric]["mean"], reverse=greater)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked + [r for r in rows if r["status"] != "ok"]


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=_jsonable)


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


def to_frame(rows: list[dict], config: RunConfig) -> pd.DataFrame:
    """Flat table: rank, model, <metric>_mean / <metric>_std for every metric, times, trials, params."""
    records = []
    for r in rows:
        rec = {"rank": r["rank"], "model": r["model"]}
        for m in metrics_for(config.task):
            rec[f"{m.name}_mean"] = r["metrics"][m.name]["mean"]
            rec[f"{m.name}_std"] = r["metrics"][m.name]["std"]
        rec["fit_time_s"] = r.get("fit_time_s")
        rec["predict_time_ms_per_1k"] = r.get("predict_time_ms_per_1k")
        rec.update({f"trials_{k}": v for k, v in r["trials"].items()})
        rec["status"] = r["status"]
        rec["best_trial"] = r.get("trial_number")
        rec["params"] = json.dumps(r.get("params", {}), default=str)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _fmt(mean, std) -> str:
    if mean is None:
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def display_rows(rows: list[dict], config: RunConfig, metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the terminal, Markdown and HTML renderings."""
    metric = metric or config.metric
    names = [metric] + [m.name for m in metrics_for(config.task) if m.name != metric]
    with_status = any(r["status"] != "ok" for r in rows)
    header = ["rank", "model"] + names + ["fit s/fold", "trials c/p/f"] + (["status"] if with_status else [])
    body = []
    for r in rows:
        t = r["trials"]
        body.append(
            [str(r["rank"] or "—"), r["model"]]
            + [_fmt(r["metrics"][n]["mean"], r["metrics"][n]["std"]) for n in names]
            + [f"{r['fit_time_s']:.2f}" if r.get("fit_time_s") is not None else "—",
               f"{t['complete']}/{t['pruned']}/{t['failed']}"]
            + (["" if r["status"] == "ok" else r["status"]] if with_status else [])
        )
    return header, body


def to_markdown(rows: list[dict], config: RunConfig) -> str:
    header, body = display_rows(rows, config)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_html(rows: list[dict], config: RunConfig) -> str:
    import html

    header, body = display_rows(rows, config)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    title = html.escape(f"tuner leaderboard — run {config.run} ({config.task}, ranked by {config.metric})")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}</style></head>"
        f"<body><h1>{title}</h1><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table></body></html>\n"
    )


def to_rich_table(rows: list[dict], config: RunConfig):
    from rich.table import Table

    header, body = display_rows(rows, config)
    direction = "higher" if get_metric(config.metric).greater_is_better else "lower"
    table = Table(title=f"run {config.run!r}: {config.task}, ranked by cross-validated {config.metric} "
                        f"({direction} is better); mean ± std over {config.cv * config.cv_repeats} folds")
    for h in header:
        table.add_column(h, justify="left" if h in {"model", "status"} else "right")
    for row in body:
        table.add_row(*row)
    return table


def render(rows: list[dict], config: RunConfig, fmt: str) -> str:
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return to_frame(rows, config).to_csv(index=False)
    if fmt == "markdown":
        return to_markdown(rows, config)
    if fmt == "html":
        return to_html(rows, config)
    raise ValueError(fmt)

