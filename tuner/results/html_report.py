"""A self-contained HTML report of a run: one file that opens offline.

Contents: the leaderboard (with the paired comparison and held-out scores); per-family
distributions of fold scores; the optimisation history and hyperparameter importances
of every family (Optuna's own plotly visualisations); and for the winner, ROC and
precision-recall curves and the confusion matrix (classification) or predicted-vs-actual
and residuals (regression), on the held-out test set when the run has one, else on
out-of-fold predictions (the winner refit once per CV fold).

plotly.js is embedded once, inline, so the file needs no network. Chart titles are the
stable strings of ``TITLES`` (the browser test looks for them).
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np

from tuner.config import RunConfig, now_iso
from tuner.errors import TunerError
from tuner.results import leaderboard as lb
from tuner.storage.runs import load_family_study

TITLES = {
    "reliability": "Reliability diagram: {family}",
    "folds": "Fold scores by family: {metric}",
    "history": "Optimisation history: {family}",
    "importance": "Hyperparameter importances: {family}",
    "roc": "ROC curve: {family}",
    "pr": "Precision-recall curve: {family}",
    "confusion": "Confusion matrix: {family}",
    "pred_actual": "Predicted vs actual: {family}",
    "residuals": "Residuals: {family}",
    "columns": "Column importances: {family}",
}
MAX_COLUMNS_SHOWN = 25  # bars in the column-importance chart
# fANOVA on fewer completed trials than this is mostly noise: the chart is drawn with a caveat
IMPORTANCE_MIN_TRIALS = 10
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _plotly():
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError:
        raise TunerError("the HTML report needs plotly: pip install 'tuner[report]'") from None
    return go, plotly.offline


class _Page:
    """Sections of HTML and figures, rendered in order."""

    def __init__(self):
        self.parts: list[str] = []
        self.n_figures = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str, cls: str = "") -> None:
        self.parts.append(f"<p class='{cls}'>{html.escape(text)}</p>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def figure(self, fig, height: int = 420) -> None:
        self.n_figures += 1
        fig.update_layout(height=height, margin={"t": 60, "l": 60, "r": 30, "b": 50}, template="plotly_white")
        self.parts.append("<div class='figure'>" + fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig{self.n_figures}", config=_PLOT_CONFIG,
            default_height=f"{height}px") + "</div>")


def _title(fig, text: str):
    fig.update_layout(title={"text": text, "x": 0.02})
    return fig


# -- sections ------------------------------------------------------------------------------
def _fold_scores(page: _Page, go, rows: list[dict], config: RunConfig, metric: str) -> None:
    page.heading("Fold scores")
    ok = [r for r in rows if r["status"] == "ok" and (r.get("fold_scores") or {}).get(metric)]
    if not ok:
        page.para("No family has a completed trial yet.", "note")
        return
    fig = go.Figure()
    for r in ok:
        folds = [v for v in r["fold_scores"][metric] if v is not None]
        fig.add_trace(go.Box(y=folds, name=r["model"], boxpoints="all", jitter=0.3, pointpos=0,
                             boxmean=True, hovertemplate="%{y:.4f}<extra>" + html.escape(r["model"]) + "</extra>"))
    fig.update_layout(showlegend=False, yaxis_title=metric, xaxis_title="family (best trial)")
    page.para(f"Each point is one CV fold of the family's best trial ({config.describe_folds()}); "
              "every family is scored on the same folds, so the points are paired across families.")
    page.figure(_title(fig, TITLES["folds"].format(metric=metric)))


def _studies(page: _Page, go, storage, config: RunConfig, metric: str) -> None:
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState
    from optuna.visualization import plot_optimization_history, plot_param_importances

    page.heading("Optimisation history and hyperparameter importances")
    page.para(f"Objective: cross-validated {config.metric} (the run's metric), one point per completed trial. "
              "Importances: fANOVA on the completed trials of the family.")
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if study else []
        page.heading(family, 3)
        if not complete:
            page.para(f"{family}: no completed trial yet.", "note")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = plot_optimization_history(study, target_name=config.metric)
        page.figure(_title(fig, TITLES["history"].format(family=family)), height=380)
        if len(complete) < 2:
            page.para(f"{family}: importances need at least 2 completed trials (it has {len(complete)}).", "note")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=config.seed))
        except (ValueError, RuntimeError) as exc:
            page.para(f"{family}: importances not available ({exc}).", "note")
            continue
        if len(complete) < IMPORTANCE_MIN_TRIALS:
            page.para(f"{family}: importances from only {len(complete)} completed trials (fewer than "
                      f"{IMPORTANCE_MIN_TRIALS}): fANOVA cannot tell much from so few, so read them as a rough "
                      "hint, not a ranking; more trials (--trials) make them meaningful.", "note")
        page.figure(_title(fig, TITLES["importance"].format(family=family)), height=360)


def _winner_predictions(config: RunConfig, row: dict, train, test, n_jobs: int):
    """(y_true, predictions, probabilities or None, description) for the winner."""
    from sklearn.base import clone

    from tuner.evaluation.cross_validation import fit_quietly, predict_outputs
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.evaluation.folds import folds_for_run
    from tuner.evaluation.weights import fit_params

    k = len(config.classes)
    estimator = build_estimator(config, row["model"], row["params"], space_context(config, n_jobs))
    if test is not None:
        fit_quietly(estimator, train.X, train.y, **fit_params(estimator, train.weights))
        pred, proba = predict_outputs(estimator, test.X, config.task, k)
        return test.y, pred, proba, (f"held-out test set ({len(test.y)} rows), the winner refit on the "
                                     f"{len(train.y)} training rows")
    folds = folds_for_run(config, train, repeats=1)
    pred = np.zeros(len(train.y), dtype=float if config.task == "regression" else int)
    proba = np.zeros((len(train.y), k)) if config.task != "regression" else None
    tested = np.zeros(len(train.y), dtype=bool)  # forward folds never test the earliest rows
    for tr, te in folds:
        est = clone(estimator)
        fit_quietly(est, train.X.iloc[tr], train.y[tr],
                    **fit_params(est, None if train.weights is None else train.weights[tr]))
        p, pr = predict_outputs(est, train.X.iloc[te], config.task, k)
        pred[te] = p
        tested[te] = True
        if proba is not None:
            proba[te] = pr
    if proba is not None:
        proba = proba[tested]
    return train.y[tested], pred[tested], proba, \
        f"out-of-fold predictions ({config.cv} folds, {int(tested.sum())} of {len(train.y)} rows)"


def _classification_charts(page: _Page, go, config: RunConfig, family: str, y, pred, proba) -> None:
    from sklearn.metrics import auc, average_precision_score, confusion_matrix, precision_recall_curve, roc_curve

    labels = [str(c) for c in config.classes]
    pairs = [(1, labels[1])] if len(labels) == 2 else list(enumerate(labels))
    roc, pr = go.Figure(), go.Figure()
    for i, label in pairs:
        positive = (y == i).astype(int)
        if positive.min() == positive.max():
            continue  # a class absent from these rows has no curve
        fpr, tpr, _ = roc_curve(positive, proba[:, i])
        prec, rec, _ = precision_recall_curve(positive, proba[:, i])
        name = label if len(labels) > 2 else f"positive class {label}"
        roc.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc(fpr, tpr):.3f})"))
        pr.add_trace(go.Scatter(x=rec, y=prec, mode="lines",
                                name=f"{name} (AP {average_precision_score(positive, proba[:, i]):.3f})"))
    roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dash", "color": "#999"}))
    roc.update_layout(xaxis_title="false positive rate", yaxis_title="true positive rate")
    pr.update_layout(xaxis_title="recall", yaxis_title="precision", yaxis_range=[0, 1.02])
    page.figure(_title(roc, TITLES["roc"].format(family=family)))
    page.figure(_title(pr, TITLES["pr"].format(family=family)))
    cm = confusion_matrix(y, pred, labels=list(range(len(labels))))
    heat = go.Figure(go.Heatmap(z=cm, x=labels, y=labels, colorscale="Blues", texttemplate="%{z}",
                                hovertemplate="actual %{y}, predicted %{x}: %{z}<extra></extra>"))
    heat.update_layout(xaxis_title="predicted", yaxis_title="actual", yaxis_autorange="reversed",
                       xaxis_type="category", yaxis_type="category")
    page.figure(_title(heat, TITLES["confusion"].format(family=family)), height=max(360, 60 * len(labels) + 160))


def _reliability(page: _Page, go, config: RunConfig, row: dict) -> None:
    """Observed rate against predicted probability, on the winner's out-of-fold predictions: its own, and
    through its calibration map (each fold mapped by a map fitted on the other folds)."""
    cal = row.get("calibration")
    if not cal or "reliability" not in cal:
        page.para("Reliability diagram: the winner's out-of-fold predictions are not kept (a table too large to "
                  "keep them), so its calibration was not checked.", "note")
        return
    what = f"probability of {config.classes[1]!r}" if len(config.classes) == 2 else "confidence (top class)"
    fig = go.Figure()
    for key, name in (("raw", "model's own"), ("calibrated", f"{cal['tried']} map, cross-fitted")):
        points, ece = cal["reliability"][key], cal[key]["ece"]
        fig.add_trace(go.Scatter(x=points["predicted"], y=points["observed"], mode="lines+markers",
                                 name=f"{name} (ECE {ece:.3f})",
                                 marker={"size": [6 + 30 * share for share in points["share"]]}))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line={"dash": "dash", "color": "#999"}))
    fig.update_layout(xaxis_title=f"mean predicted {what}", yaxis_title="observed rate", xaxis_range=[0, 1],
                      yaxis_range=[0, 1.02])
    page.figure(_title(fig, TITLES["reliability"].format(family=row["model"])))
    page.para(f"Calibration: {cal['why']}. Marker size: share of the rows in the bin.", "note")


def _regression_charts(page: _Page, go, config: RunConfig, family: str, y, pred) -> None:
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    fig = go.Figure([
        go.Scatter(x=y, y=pred, mode="markers", name="rows", marker={"opacity": 0.6}),
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect", line={"dash": "dash", "color": "#999"}),
    ])
    fig.update_layout(xaxis_title=f"actual {config.target}", yaxis_title=f"predicted {config.target}")
    page.figure(_title(fig, TITLES["pred_actual"].format(family=family)))
    resid = y - pred
    fig = go.Figure([
        go.Scatter(x=pred, y=resid, mode="markers", name="rows", marker={"opacity": 0.6}),
        go.Scatter(x=[float(pred.min()), float(pred.max())], y=[0, 0], mode="lines", name="zero",
                   line={"dash": "dash", "color": "#999"}),
    ])
    fig.update_layout(xaxis_title=f"predicted {config.target}", yaxis_title="residual (actual − predicted)")
    page.figure(_title(fig, TITLES["residuals"].format(family=family)))


def _winner(page: _Page, go, config: RunConfig, rows: list[dict], data, n_jobs: int, on_step) -> None:
    page.heading("The winner")
    if not rows or rows[0]["status"] != "ok":
        page.para("No family has a completed trial yet.", "note")
        return
    row = rows[0]
    try:
        from tuner.data.dataset import load_split_for_run
        from tuner.results.importance import fit_estimate_s

        on_step(f"reading the run's data ({config.source})", None)
        train, test = load_split_for_run(config, data)
        fit = fit_estimate_s(config, row, whole=test is not None)
        on_step(f"refitting {row['model']} " + ("on the training part" if test is not None else
                                                f"on each of {config.cv} CV folds") + " for the winner's charts",
                None if fit is None else fit * (1 if test is not None else config.cv))
        y, pred, proba, where = _winner_predictions(config, row, train, test, n_jobs)
    except TunerError as exc:
        page.para(f"Charts of the winner need the run's data: {exc}", "note")
        return
    page.para(f"{_winner_name(row)}, on the {where}.")
    if config.task == "regression":
        _regression_charts(page, go, config, row["model"], np.asarray(y, dtype=float), np.asarray(pred, dtype=float))
    else:
        _classification_charts(page, go, config, row["model"], np.asarray(y), np.asarray(pred), proba)
        _reliability(page, go, config, row)
    _column_importances(page, go, config, row, train, test, n_jobs, on_step)


def _winner_name(row: dict) -> str:
    """The winner as the report names it: a family's best trial, or the ensemble's members."""
    if row.get("members"):
        return f"{row['model']}: the weighted average of {lb.ensemble_members(row)}"
    return f"{row['model']} (trial {row['trial_number']})"


def _column_importances(page: _Page, go, config: RunConfig, row: dict, train, test, n_jobs: int, on_step) -> None:
    from tuner.results.importance import permutation_importances

    try:
        found = permutation_importances(config, row["model"], row["params"], train, test, n_jobs=n_jobs,
                                        on_step=on_step, row=row)
    except Exception as exc:  # a refit that fails here must not lose the rest of the report
        page.para(f"Column importances not available: {type(exc).__name__}: {exc}", "note")
        return
    shown = found["columns"][:MAX_COLUMNS_SHOWN][::-1]  # most important at the top
    fig = go.Figure(go.Bar(x=[c["mean"] for c in shown], y=[c["column"] for c in shown], orientation="h",
                           error_x={"type": "data", "array": [c["std"] for c in shown]}))
    fig.update_layout(xaxis_title=f"how much worse {config.metric} gets when the column is shuffled",
                      yaxis={"automargin": True})
    more = len(found["columns"]) - MAX_COLUMNS_SHOWN
    page.para(f"Permutation importance of each column on {found['where']}: mean ± std over {found['repeats']} "
              f"shuffles per fold" + (f"; the {more} least important columns are not shown" if more > 0 else "")
              + ". Near 0 or below: the model does not need the column, or a correlated column stands in for it.")
    page.figure(_title(fig, TITLES["columns"].format(family=row["model"])), height=max(300, 22 * len(shown) + 120))


# -- the page ------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px 32px;color:#222}
div.wide{overflow-x:auto}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}h3{margin-bottom:.2em}
table.leaderboard{border-collapse:collapse;font-size:.9em}
table.leaderboard td,table.leaderboard th{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
table.leaderboard td:nth-child(2),table.leaderboard td:nth-child(4){text-align:left}
table.leaderboard tr.leader{background:#e6f4ea}table.leaderboard tr.tied{background:#f3faf5}
p.note{color:#8a5a00}dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}
.figure{margin:8px 0 16px}
"""


def build_report(storage, config: RunConfig, *, data=None, n_jobs: int = 1, note: str | None = None,
                 on_step=None) -> str:
    """The report of ``config``'s run as one HTML string (plotly.js inline); ``note``: shown under
    the leaderboard (why some scores are missing: ``tuner.workflow.derived.ensure_scores``);
    ``on_step(text, estimate_s)``: called as each long step starts (a plain callable)."""
    on_step = on_step or (lambda text, estimate_s=None: None)
    go, offline = _plotly()
    page = _Page()
    rows = lb.build(storage, config)
    metric = config.metric
    meta = {
        "data": f"{config.source} ({config.n_rows} training rows, {config.n_features} features)",
        "target": f"{config.target} ({config.task}: {config.task_reason})",
        "metric": f"{metric} ({'higher' if config.direction == 'maximize' else 'lower'} is better)",
        "cross-validation": f"{config.describe_folds()}, seed {config.seed}, the same folds for every family",
        "row weights": (f"{config.weights!r}, in every fit and metric (the charts below are unweighted)"
                        if config.weights else "none"),
        "held-out test set": (f"{config.test_size:g} of the rows"
                              + (" (whole groups)" if config.groups else " (the latest)" if config.time_column else "")
                              + ", split off before tuning, looked at once"
                              if config.test_size else "none (run with --test-size F to hold one out)"),
        "families": ", ".join(config.families),
        "report made": now_iso(),
    }
    page.raw("<dl class='meta'>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                                          for k, v in meta.items()) + "</dl>")
    page.heading("Leaderboard")
    page.raw("<div class='wide'>" + lb.html_table(rows, config, metric) + "</div>")
    for n in lb.notes(rows, config, metric):
        page.para(n)
    if note:
        page.para(note, "note")
    _fold_scores(page, go, rows, config, metric)
    on_step(f"drawing the optimisation history and fANOVA importances of {len(config.families)} family(ies)", None)
    _studies(page, go, storage, config, metric)
    _winner(page, go, config, rows, data, n_jobs, on_step)
    title = html.escape(f"tuner report — run {config.run}")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{title}</title>"
        f"<style>{_CSS}</style><script type='text/javascript'>{offline.get_plotlyjs()}</script></head>"
        f"<body><h1>{title}</h1>{''.join(page.parts)}</body></html>\n"
    )


def write_report(storage, config: RunConfig, out: str | Path, *, data=None, n_jobs: int = 1,
                 note: str | None = None, on_step=None) -> Path:
    out = Path(out)
    text = build_report(storage, config, data=data, n_jobs=n_jobs, note=note, on_step=on_step)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TunerError(f"cannot write {out}: {exc.strerror}") from None
    return out


__all__ = ["TITLES", "build_report", "write_report"]
