"""The best K complete trials across every family of a run, by any metric of the task.

Read from the storage alone (``tuner leaderboard --top-trials K [--metric NAME]``).
"""

from __future__ import annotations

import json

import pandas as pd
from optuna.trial import TrialState

from tuner.config import RunConfig
from tuner.evaluation.metrics import check_metric
from tuner.results.leaderboard import format_score, to_json
from tuner.storage.runs import load_family_study


def build(storage, config: RunConfig, metric: str | None = None, k: int = 10) -> list[dict]:
    """Up to ``k`` rows, best first: rank, model, trial_number, metric, mean, std, params."""
    metric = check_metric(metric or config.metric, config.task)
    scored = []
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        if study is None:
            continue
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            m = (t.user_attrs.get("metrics") or {}).get(metric.name) or {}
            if m.get("mean") is not None:
                scored.append((m["mean"], m.get("std"), family, t))
    scored.sort(key=lambda x: x[0], reverse=metric.greater_is_better)
    return [
        {"rank": i, "model": family, "trial_number": t.number, "metric": metric.name,
         "mean": mean, "std": std, "params": dict(t.params)}
        for i, (mean, std, family, t) in enumerate(scored[:k], 1)
    ]


def to_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{**{k: v for k, v in r.items() if k != "params"}, "params": json.dumps(r["params"], default=str)} for r in rows],
        columns=["rank", "model", "trial_number", "metric", "mean", "std", "params"],
    )


def display_rows(rows: list[dict], metric: str) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "model", "trial", f"{metric} (CV)", "params"]
    body = [[str(r["rank"]), r["model"], str(r["trial_number"]), format_score(r["mean"], r["std"]),
             ", ".join(f"{k}={_short(v)}" for k, v in r["params"].items())] for r in rows]
    return header, body


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def to_rich_table(rows: list[dict], config: RunConfig, metric: str):
    from rich.table import Table

    header, body = display_rows(rows, metric)
    table = Table(title=f"run {config.run!r}: best {len(rows)} trial(s) across families by cross-validated {metric}")
    for h in header:
        table.add_column(h, justify="left" if h in {"model", "params"} else "right", overflow="fold")
    for row in body:
        table.add_row(*row)
    return table


def render(rows: list[dict], config: RunConfig, fmt: str, metric: str) -> str:
    """The trials as text in ``fmt``: json, csv, markdown or html (``--format``)."""
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return to_frame(rows).to_csv(index=False)
    header, body = display_rows(rows, metric)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        import html

        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
        title = html.escape(f"tuner — run {config.run}: best trials by {metric}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                f"<h1>{title}</h1><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table></body></html>\n")
    raise ValueError(fmt)
