"""Rank the families of a run from what the storage holds (any process, any time).

A row is a family's best complete trial on the ranking metric, with its paired comparison
with the leader (``tuner.evaluation.stats``) and, where ``tuner.workflow.derived`` stored them,
the refit scores of that trial on the training and held-out test parts. This module only
reads those scores (and the stored ensemble): nothing under ``tuner.results`` writes to a storage.
"""

from __future__ import annotations

import json
import math

import pandas as pd
from optuna.trial import TrialState

from tuner.config import RunConfig
from tuner.evaluation import stats
from tuner.evaluation.metrics import get_metric, metrics_for
from tuner.models.ensemble import NAME as ENSEMBLE
from tuner.results.ensemble import row as ensemble_row
from tuner.results.ensemble import run_study as ensemble_run_study
from tuner.results.ensemble import selection as ensemble_selection
from tuner.storage.runs import load_family_study

# The family study's user attribute holding refit scores ({trial number: entry}), written by
# ``tuner.workflow.derived.score_best``.
REFIT_ATTR = "holdout"


def stored_refit_scores(study, trial_number) -> dict | None:
    """The refit scores stored for ``trial_number`` of this family study (or a key of
    :func:`refit_scores_place`), if any."""
    if study is None:
        return None
    return (study.user_attrs.get(REFIT_ATTR) or {}).get(str(trial_number))


def refit_scores_place(storage, config: RunConfig, row: dict):
    """(study, key) where a row's refit scores are stored: its family study under its trial
    number; the ensemble's on the run's study under its members and weights."""
    if row["model"] != ENSEMBLE:
        return load_family_study(storage, config.run, row["model"]), str(row["trial_number"])
    import optuna

    members = ",".join(f"{m['model']}#{m['trial_number']}@{m['weight']:.4f}" for m in row["members"])
    return optuna.load_study(study_name=config.run, storage=storage), f"{ENSEMBLE}:{members}"


def attach_refit_scores(row: dict, entry: dict | None) -> None:
    """Copy stored held-out test scores into a leaderboard row."""
    if entry and entry.get("test") is not None:
        row["test_scores"] = dict(entry["test"])


def _best_complete(trials, metric: str, greater: bool):
    scored = [t for t in trials if t.state == TrialState.COMPLETE and _mean(t, metric) is not None]
    if not scored:
        return None
    return (max if greater else min)(scored, key=lambda t: _mean(t, metric))


def _mean(trial, metric: str):
    m = trial.user_attrs.get("metrics", {}).get(metric)
    return None if m is None else m.get("mean")


def family_row(config: RunConfig, family: str, trials, metric: str) -> dict:
    """A family's row from its trials: counts by state, and its best complete trial on
    ``metric`` (scores, fold scores, times, params, training scores) or why there is none."""
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
        # a family set aside says why in the words of tuner run's note (tuner.execution.family_state)
        from tuner.execution import family_state as aside

        reasons = [t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL]
        reasons = [r for r in reasons if r]
        capped = sum(t.state == TrialState.PRUNED and str(t.user_attrs.get("stopped", "")).startswith("time cap")
                     for t in trials)
        if capped >= aside.MAX_CAPPED_WITHOUT_RESULT and not counts["complete"]:
            row["status"] = f"set aside: {aside.too_slow(capped)}"
        elif counts["failed"] and not counts["complete"]:
            last = reasons[-1] if reasons else "unknown"
            row["status"] = (f"set aside: {aside.failing(counts['failed'])}; last error: {last}"
                             if counts["failed"] >= aside.MAX_FAILURES_WITHOUT_RESULT
                             else f"all {counts['failed']} trial(s) failed; last error: {last}")
        else:
            row["status"] = "no completed trial yet"
        row["metrics"] = {m.name: {"mean": None, "std": None} for m in metrics_for(config.task, config.metric)}
        return row
    stored = best.user_attrs.get("metrics", {})
    row.update(
        status="ok",
        metrics={m.name: {"mean": stored.get(m.name, {}).get("mean"), "std": stored.get(m.name, {}).get("std")}
                 for m in metrics_for(config.task, config.metric)},
        fold_scores={name: v.get("folds") for name, v in stored.items()},
        fit_time_s=best.user_attrs.get("fit_time_s"),
        predict_time_ms_per_1k=best.user_attrs.get("predict_time_ms_per_1k"),
        params=dict(best.params),
        trial_number=best.number,
    )
    train = best.user_attrs.get("train_metrics")
    if train:  # mean score on the folds' own training rows: the gap to CV shows overfitting
        row["train_scores"] = dict(train)
        row["overfitting"] = {
            name: None if train.get(name) is None or row["metrics"][name]["mean"] is None
            else train[name] - row["metrics"][name]["mean"]
            for name in row["metrics"]
        }
    return row


def build(storage, config: RunConfig, metric: str | None = None, *, studies: dict | None = None,
          ensemble: bool = True) -> list[dict]:
    """One row per family (its best trial), best first on ``metric`` (default: the run's).

    ``studies``: family → its study as the driver holds it (its cache already has the trials,
    so a long run's trials are not read from the storage again at its end).

    Each row also carries the paired comparison with the leader on ``metric``
    (``p_value_vs_leader``, ``tied_with_leader``; see ``stats``), the training-fold scores
    and their gap to CV (``train_scores``, ``overfitting``) and, for a run with a held-out
    test set, the test scores of its best trial refit on the training part (``test_scores``).
    With ``ensemble``, the run's ensemble is a row too when it keeps two models or more
    (``tuner.results.ensemble``; worked out in memory, not stored, when the best trials changed since
    the stored selection).
    """
    metric = metric or config.metric
    greater = get_metric(metric).greater_is_better
    rows, trials_by_family = [], {}
    for family in config.families:
        study = (studies or {}).get(family) or load_family_study(storage, config.run, family)
        trials = trials_by_family[family] = study.get_trials(deepcopy=False) if study is not None else []
        row = family_row(config, family, trials, metric)
        if row.get("trial_number") is not None:
            attach_refit_scores(row, stored_refit_scores(study, row["trial_number"]))
        rows.append(row)
    if ensemble:
        blended = ensemble_row(config, ensemble_selection(storage, config, trials_by_family)[0])  # stored or worked out now
        if blended is not None:
            attach_refit_scores(blended, stored_refit_scores(*refit_scores_place(storage, config, blended)))
            rows.append(blended)
    if config.task != "regression":
        from tuner.results import decision

        decision.attach(ensemble_run_study(storage, config), config, rows, trials_by_family)
    ranked = [r for r in rows if r["status"] == "ok"]
    ranked.sort(key=lambda r: r["metrics"][metric]["mean"], reverse=greater)
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    rows = ranked + [r for r in rows if r["status"] != "ok"]
    stats.compare_with_leader(rows, metric, config.cv)
    return rows


def to_json(rows: list[dict]) -> str:
    """Rows as JSON; non-finite numbers become null."""
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
        for m in metrics_for(config.task, config.metric):
            rec[f"{m.name}_mean"] = r["metrics"][m.name]["mean"]
            rec[f"{m.name}_std"] = r["metrics"][m.name]["std"]
        rec["p_value_vs_leader"] = r.get("p_value_vs_leader")
        rec["tied_with_leader"] = r.get("tied_with_leader")
        for m in metrics_for(config.task, config.metric):
            if "test_scores" in r:
                rec[f"test_{m.name}"] = r["test_scores"].get(m.name)
            if "overfitting" in r:
                rec[f"overfitting_{m.name}"] = r["overfitting"].get(m.name)
        if config.task == "binary":
            cut = r.get("threshold") or {}
            rec["threshold"] = cut.get("threshold")  # the cut its labels come from (None: argmax)
            rec["threshold_tuned"] = cut.get("tuned") if cut else None
            for name, v in (cut.get("cv") or {}).items():  # label metrics at the model's cut, cross-fitted
                rec[f"{name}_at_threshold"] = v["mean"]
        if config.task != "regression":
            cal = r.get("calibration") or {}
            answered = cal.get("calibrated" if cal.get("method") else "raw") or {}
            rec["calibration"] = cal.get("method")
            rec["ece"] = (cal.get("raw") or {}).get("ece")  # of the model's own out-of-fold probabilities
            for name in ("log_loss", "brier", "ece"):  # of the probabilities the model gives (cross-fitted map)
                rec[f"calibrated_{name}"] = answered.get(name)
        rec["fit_time_s"] = r.get("fit_time_s")
        rec["predict_time_ms_per_1k"] = r.get("predict_time_ms_per_1k")
        rec.update({f"trials_{k}": v for k, v in r["trials"].items()})
        rec["status"] = r["status"]
        rec["best_trial"] = r.get("trial_number")
        rec["params"] = json.dumps(r.get("params", {}), default=str)
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    for name in ("rank", "best_trial"):  # whole numbers with gaps (unranked rows, the ensemble): not floats
        if name in frame.columns:
            frame[name] = frame[name].astype("Int64")
    return frame


def format_score(mean, std) -> str:
    """``mean ± std`` to 4 decimals (``—`` for no score), as every rendering shows a score."""
    if mean is None:
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def _fmt_gap(value) -> str:
    return "—" if value is None else f"{value:+.4f}"


def trial_counts(row: dict) -> str:
    """complete/pruned/failed; for the ensemble, how many models it averages (it runs no trial)."""
    if "members" in row:
        return f"{len(row['members'])} models"
    t = row["trials"]
    return f"{t['complete']}/{t['pruned']}/{t['failed']}"


def notes(rows: list[dict], config: RunConfig, metric: str | None = None) -> list[str]:
    """What the columns mean: ranking by CV, the paired test, the test set looked at once."""
    metric = metric or config.metric
    folds = config.cv * config.cv_repeats
    out = [f"Ranked by cross-validated {metric} (mean ± std over {folds} folds: {config.describe_folds()}, "
           "the same folds for every family)."]
    if sum(r["status"] == "ok" for r in rows) > 1:
        tied = [r["model"] for r in rows[1:] if r.get("tied_with_leader")]
        out.append(f"vs leader: corrected resampled t-test (Nadeau & Bengio 2003) on the paired fold scores, "
                   f"α = {stats.ALPHA}; 'tied' = cannot be told apart from the leader"
                   + (f" (tied group: {', '.join([rows[0]['model']] + tied)})." if tied else "."))
        out.append(f"tied / worse: 'worse' = behind the leader with p < {stats.ALPHA}, 'tied' = p ≥ {stats.ALPHA}; "
                   "the test reads each family's fold-by-fold differences from the leader, not its mean alone, "
                   "so a 'worse' row can rank above a 'tied' one (a small gap on every fold is surer than a "
                   "larger, noisier one).")
    for r in rows:
        if r["model"] == ENSEMBLE:
            out.append(f"ensemble: weighted average of {ensemble_members(r)}; the weights scoring each fold were "
                       "chosen on the other folds, so its CV score is as honest as a family's."
                       + ("" if r.get("rank") == 1 else " Export it with `tuner export --model ensemble`."))
    if any("test_scores" in r for r in rows):
        out.append(f"test: each family's best refit on the training part and scored on the held-out "
                   f"{config.test_size:g} of the rows, looked at once after tuning; it does not change the ranking.")
    cut = next((r["threshold"] for r in rows if r.get("threshold")), None)
    if cut is not None:
        out.append(f"threshold: the probability of {config.classes[1]!r} from which the model answers it, chosen for "
                   f"{cut['metric']} on out-of-fold predictions ('own' = no cut beat the model's own labels, its most "
                   f"probable class before any calibration, on held-back folds); '{cut['metric']} at cut': each fold "
                   "scored at a cut chosen on the other folds.")
    if any(r.get("calibration") for r in rows):
        out.append("calibration: the map a model's probabilities go through, fitted on its out-of-fold predictions "
                   "and kept only where it lowered the held-back folds' log loss ('—' = its own probabilities); "
                   "ECE (expected calibration error, 10 bins): the model's own → as it answers, the map cross-fitted.")
    if any("overfitting" in r for r in rows):
        out.append(train_gap_note(metric))
    return out


def train_gap_note(metric: str) -> str:
    """What the train−CV column of ``metric`` means, in the metric's direction: for an error
    (lower is better) a model that fits its training rows better has a negative gap."""
    what = (f"train−CV: the mean {metric} on each fold's own training rows minus the CV {metric}; ")
    if get_metric(metric).greater_is_better:
        return what + ("a large positive gap (a training score far above the CV score) means overfitting.")
    return what + (f"{metric} is an error (lower is better), so the gap is negative when the model fits its "
                   "training rows better than it predicts new ones, and a large negative gap (a training error "
                   "far below the CV error) means overfitting.")


def ensemble_members(row: dict) -> str:
    """The ensemble row's members as text: ``family #trial (weight)``, in the stored order."""
    return ", ".join(f"{m['model']} #{m['trial_number']} ({m['weight']:.2f})" for m in row.get("members") or [])


def display_rows(rows: list[dict], config: RunConfig, metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the terminal, Markdown and HTML renderings."""
    metric = metric or config.metric
    names = [metric] + [m.name for m in metrics_for(config.task, config.metric) if m.name != metric]
    with_status = any(r["status"] != "ok" for r in rows)
    with_test = any("test_scores" in r for r in rows)
    with_gap = any("overfitting" in r for r in rows)
    cut_metric = next((r["threshold"]["metric"] for r in rows if r.get("threshold")), None)
    with_cal = any(r.get("calibration") for r in rows)
    header = (["rank", "model", f"{metric} (CV)", "vs leader"] + ([f"{metric} (test)"] if with_test else [])
              + ([f"train−CV {metric}"] if with_gap else [])
              + (["threshold", f"{cut_metric} at cut"] if cut_metric else [])
              + (["calibration", "ECE"] if with_cal else []) + names[1:]
              + ["fit s/fold", "trials c/p/f"] + (["status"] if with_status else []))
    body = []
    for r in rows:
        body.append(
            [str(r["rank"] or "—"), r["model"], format_score(r["metrics"][metric]["mean"], r["metrics"][metric]["std"]),
             stats.verdict(r)]
            + ([format_score((r.get("test_scores") or {}).get(metric), None)] if with_test else [])
            + ([_fmt_gap((r.get("overfitting") or {}).get(metric))] if with_gap else [])
            + (_cut_cells(r.get("threshold"), cut_metric) if cut_metric else [])
            + (_calibration_cells(r.get("calibration")) if with_cal else [])
            + [format_score(r["metrics"][n]["mean"], r["metrics"][n]["std"]) for n in names[1:]]
            + [f"{r['fit_time_s']:.2f}" if r.get("fit_time_s") is not None else "—",
               trial_counts(r)]
            + (["" if r["status"] == "ok" else r["status"]] if with_status else [])
        )
    return header, body


def _cut_cells(cut: dict | None, name: str) -> list[str]:
    if not cut:
        return ["—", "—"]
    at = (cut.get("cv") or {}).get(name) or {}
    own = cut["threshold"] is None or not cut.get("tuned", True)
    return ["own" if own else f"{cut['threshold']:.3f}", format_score(at.get("mean"), at.get("std"))]


def _calibration_cells(cal: dict | None) -> list[str]:
    """(map, ECE own → as answered) of a row's ``calibration`` entry."""
    if not cal:
        return ["—", "—"]
    raw = cal["raw"]["ece"]
    if not cal.get("method"):
        return ["—", f"{raw:.3f}"]
    return [cal["method"], f"{raw:.3f} → {cal['calibrated']['ece']:.3f}"]


def to_markdown(rows: list[dict], config: RunConfig, metric: str | None = None) -> str:
    header, body = display_rows(rows, config, metric)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes(rows, config, metric)) + "\n"


def html_table(rows: list[dict], config: RunConfig, metric: str | None = None) -> str:
    """The leaderboard as an HTML <table> (tied rows carry class 'tied', the leader 'leader')."""
    import html

    header, body = display_rows(rows, config, metric)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    trs = "".join(
        f"<tr class='{'leader' if r.get('rank') == 1 else 'tied' if r.get('tied_with_leader') else ''}'>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for r, row in zip(rows, body))
    return f"<table class='leaderboard'><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"


def to_html(rows: list[dict], config: RunConfig, metric: str | None = None) -> str:
    import html

    metric = metric or config.metric
    title = html.escape(f"tuner leaderboard — run {config.run} ({config.task}, ranked by {metric})")
    table = html_table(rows, config, metric)
    foot = "".join(f"<p>{html.escape(n)}</p>" for n in notes(rows, config, metric))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}</style></head>"
        f"<body><h1>{title}</h1>{table}{foot}</body></html>\n"
    )


def terminal_columns(rows: list[dict], config: RunConfig, metric: str | None = None) -> list:
    """The terminal table's columns (``tuner.results.table``): rank, model, the headline score,
    vs leader, train−CV and trials are kept at any width; then the test score, the other
    metrics (mean only when space is short), fit time and status."""
    from tuner.results.table import Column

    metric = metric or config.metric
    ok = [r["status"] == "ok" for r in rows]

    def score(name):
        return [format_score(r["metrics"][name]["mean"], r["metrics"][name]["std"]) for r in rows]

    def mean(name):
        return [format_score(r["metrics"][name]["mean"], None) for r in rows]

    cols = [Column("rank", [str(r["rank"] or "—") for r in rows], kept=True),
            Column("model", [r["model"] for r in rows], kept=True, justify="left"),
            Column(f"{metric} (CV)", score(metric), kept=True),
            Column("vs leader", [stats.verdict(r) for r in rows], kept=True, justify="left")]
    if any("overfitting" in r for r in rows):
        cols.append(Column("train−CV", [_fmt_gap((r.get("overfitting") or {}).get(metric)) for r in rows], kept=True))
    cols.append(Column("trials c/p/f", [trial_counts(r) for r in rows], kept=True, short_header="trials"))
    if any("test_scores" in r for r in rows):
        cols.append(Column(f"{metric} (test)", [format_score((r.get("test_scores") or {}).get(metric), None)
                                                for r in rows]))
    cut_metric = next((r["threshold"]["metric"] for r in rows if r.get("threshold")), None)
    if cut_metric:
        cells = [_cut_cells(r.get("threshold"), cut_metric) for r in rows]
        cols.append(Column("threshold", [c[0] for c in cells], short_header="cut"))
        cols.append(Column(f"{cut_metric} at cut", [c[1] for c in cells], short=[c[1].split(" ±")[0] for c in cells]))
    if any(r.get("calibration") for r in rows):
        cells = [_calibration_cells(r.get("calibration")) for r in rows]
        cols.append(Column("calibration", [c[0] for c in cells], short_header="cal."))
        cols.append(Column("ECE", [c[1] for c in cells], short=[c[1].split(" → ")[-1] for c in cells]))
    for m in metrics_for(config.task, config.metric):
        if m.name != metric:
            cols.append(Column(m.name, score(m.name), short=mean(m.name)))
    cols.append(Column("fit s/fold", [f"{r['fit_time_s']:.2f}" if r.get("fit_time_s") is not None else "—"
                                      for r in rows]))
    if not all(ok):
        cols.append(Column("status", ["" if good else r["status"] for r, good in zip(rows, ok)], justify="left"))
    return cols


def fitted_table(rows: list[dict], config: RunConfig, metric: str | None = None, *, width: int | None = None,
                 wide_hint: str = "`tuner leaderboard --wide`"):
    """The leaderboard for a terminal ``width`` columns wide (None: every column, for pipes and
    files); a ``tuner.results.table.Fitted``."""
    from tuner.results.table import fit

    metric = metric or config.metric
    direction = "higher" if get_metric(metric).greater_is_better else "lower"
    title = (f"run {config.run!r}: {config.task}, ranked by cross-validated {metric} ({direction} is better); "
             f"mean ± std over {config.cv * config.cv_repeats} folds")
    notes_ = notes(rows, config, metric)[1:]
    if any(r["status"] != "ok" for r in rows) and width is not None:  # the status column may be hidden
        notes_ += [f"{r['model']}: {r['status']}" for r in rows if r["status"] != "ok"]
    notes_.append("trials c/p/f: complete / pruned / failed.")
    return fit(terminal_columns(rows, config, metric), width, title=title, notes=notes_,
               row_styles=["bold" if r.get("tied_with_leader") else None for r in rows], wide_hint=wide_hint)


def to_rich_table(rows: list[dict], config: RunConfig, metric: str | None = None, *, width: int | None = None):
    """The leaderboard as a Rich renderable: every column (``width=None``) or those that fit ``width``."""
    return fitted_table(rows, config, metric, width=width).renderable


def render(rows: list[dict], config: RunConfig, fmt: str, metric: str | None = None) -> str:
    """The leaderboard as text in ``fmt``: json, csv, markdown or html (``--format``)."""
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return to_frame(rows, config).to_csv(index=False)
    if fmt == "markdown":
        return to_markdown(rows, config, metric)
    if fmt == "html":
        return to_html(rows, config, metric)
    raise ValueError(fmt)

