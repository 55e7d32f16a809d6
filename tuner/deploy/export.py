"""Refit a family's best configuration on all training rows and write the model artifact.

The refit goes through :func:`tuner.evaluation.estimator.build_estimator`, the same builder the
driver cross-validated, on the rows :func:`tuner.data.dataset.load_for_run` gives back (the
training part of the run's data, checked against the run's fingerprint), or on the training part
of ``data`` for a run made from an in-memory DataFrame (checked the same way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tuner.config import now_iso
from tuner.deploy import artifact
from tuner.errors import TunerError
from tuner.models.ensemble import NAME as ENSEMBLE


@dataclass
class ExportResult:
    out: Path | None  # the artifact folder (None: refit in memory, not written)
    card: dict
    fitted: object  # the in-memory refit pipeline (what the artifact holds)
    fit_seconds: float
    data: object = None  # the training Dataset the refit used
    kept: bool = False  # the run's kept final model, written without a refit (tuner.deploy.kept_model)
    note: str = ""  # why the model was refit rather than taken from the run


def choose_row(rows: list[dict], family: str | None, run: str) -> dict:
    """The winner (first row with a completed trial) or ``family``'s best row."""
    ok = [r for r in rows if r["status"] == "ok"]
    if family is None:
        if not ok:
            raise TunerError(
                f"run {run!r} has no completed trial yet, so there is no model to export; "
                "run `tuner run` (or wait for its first trial) first"
            )
        return ok[0]
    for r in rows:
        if r["model"] == family:
            if r["status"] != "ok":
                done = ", ".join(x["model"] for x in ok) or "none"
                raise TunerError(f"family {family!r} has no completed trial in run {run!r} ({r['status']}); "
                                 f"families with one: {done}")
            return r
    raise TunerError(f"family {family!r} is not part of run {run!r}; its families: "
                     f"{', '.join(r['model'] for r in rows)}")


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy understands: keep only the scheme
        return url.split("://", 1)[0] + "://..."


def schema_card(schema: dict) -> dict:
    """The input schema for the card: ordered columns with their kind (and categories seen)."""
    columns = [{"name": c, "type": "number", "dtype": "float64"} for c in schema["numeric"]]
    columns += [{"name": c, "type": "text" if c in schema.get("text", []) else "category", "dtype": "string",
                 "categories": schema.get("categories", {}).get(c, [])} for c in schema["categorical"]]
    return {**schema, "columns": columns}


def refit(config, family: str, params: dict, ds, *, n_jobs: int = 1):
    """(fitted pipeline, seconds): ``family`` with ``params`` fitted on all rows of ``ds``
    (the run's training part: ``tuner.data.dataset.load_split_for_run(config, data)[0]``)."""
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.evaluation.weights import fit_params

    ctx = space_context(config, n_jobs, n_rows=len(ds.X))
    estimator = build_estimator(config, family, params, ctx)
    start = time.perf_counter()
    try:
        fit_quietly(estimator, ds.X, ds.y, **fit_params(estimator, ds.weights))
    except TunerError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TunerError(f"refitting {family} on all {len(ds.X)} training rows failed: {type(exc).__name__}: {first}") from exc
    return estimator, time.perf_counter() - start


def kept_for(*, run: str | None, storage: str | None, family: str | None):
    """(config, row to export, the run's kept model record or None, why not)."""
    from tuner.deploy import kept_model
    from tuner.results import leaderboard as lb
    from tuner.storage.runs import open_storage, require_config

    store = open_storage(storage, create=False)
    config = require_config(store, run)
    rows = lb.build(store, config)
    row = choose_row(rows, family, config.run)
    kept, why = kept_model.usable(store, config, rows, family)
    return config, row, kept, why


def refit_best(*, run: str | None = None, storage: str | None = None, family: str | None = None,
               n_jobs: int = 1, data=None, importance: bool = False) -> ExportResult:
    """Refit the run's winner (or ``family``'s best) on all training rows, in memory: an
    ``ExportResult`` whose ``out`` is None until written (``export_model``). ``importance``: the
    card also gets the model's permutation importances (``tuner.results.importance``)."""
    from tuner.results import leaderboard as lb
    from tuner.storage.runs import open_storage, require_config

    store = open_storage(storage, create=False)
    config = require_config(store, run)
    row = choose_row(lb.build(store, config), family, config.run)
    return _refit_row(config, row, storage, n_jobs=n_jobs, data=data, importance=importance)


def _refit_row(config, row: dict, storage: str | None, *, n_jobs: int, data, importance: bool,
               on_step=None) -> ExportResult:
    """``refit_best`` once the row is chosen."""
    from tuner.data.dataset import load_split_for_run
    from tuner.results.importance import fit_estimate_s
    from tuner.storage.runs import DEFAULT_STORAGE

    step = on_step or _no_step
    step(f"reading the run's data ({config.source})", None)
    train, test = load_split_for_run(config, data)
    step(f"refitting {row['model']} on all {len(train.X)} training rows", fit_estimate_s(config, row, whole=True))
    fitted, seconds = refit(config, row["model"], row["params"], train, n_jobs=n_jobs)
    fitted = calibrated_as_row(config, row, fitted)
    card = card_for(config, row, storage or DEFAULT_STORAGE, train, seconds)
    if importance:
        card["feature_importance"] = _importances(config, row, train, test, n_jobs, on_step)
    return ExportResult(None, card, fitted, seconds, train)


def _no_step(text: str, estimate_s: float | None = None) -> None:
    """The ``on_step`` of a caller that shows nothing."""


ONNX_STEP = ("converting to ONNX and checking model.onnx against the native model (a few seconds)", None)


def _importances(config, row: dict, train, test, n_jobs: int, on_step=None) -> dict:
    """The card's permutation importances, or why there are none (never a failed export)."""
    from tuner.results.importance import permutation_importances

    try:
        return permutation_importances(config, row["model"], row["params"], train, test, n_jobs=n_jobs,
                                       on_step=on_step, row=row)
    except Exception as exc:  # e.g. a fold refit that runs out of memory: the model itself is fine
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"error": f"{type(exc).__name__}: {first}"[:300]}


def calibrated_as_row(config, row: dict, fitted):
    """``fitted`` (``row``'s configuration) behind the calibration map the row keeps, if any."""
    from tuner.models import calibrated

    return calibrated.wrap(fitted, row.get("calibration"), len(config.classes))


def calibration_card(config, row: dict) -> dict | None:
    """The map a classifier's probabilities go through (``tuner.models.calibrated``), with the scores that
    chose it; None for regression."""
    if config.task == "regression":
        return None
    cal = row.get("calibration")
    if not cal:
        return {"method": None, "why": "no out-of-fold predictions are kept for this row: its own probabilities"}
    return {k: cal[k] for k in ("method", "parameters", "tried", "raw", "calibrated", "why", "rows")}


def card_for(config, row: dict, storage: str, ds, seconds: float) -> dict:
    """The model card of ``row`` refit on ``ds`` in ``seconds``."""
    family = row["model"]
    return {
        "format": artifact.FORMAT,
        "format_version": artifact.FORMAT_VERSION,
        "created_at": now_iso(),
        "run": config.run,
        "storage": _redact(storage),
        "family": family,
        "task": config.task,
        "target": config.target,
        "metric": config.metric,
        "direction": config.direction,
        "classes": list(config.classes),
        "schema": schema_card(config.schema),
        "leaderboard_row": {k: v for k, v in row.items() if k != "params"},
        "params": dict(row["params"]),
        "data": {
            "source": config.source,
            "fingerprint": config.fingerprint,
            "rows_refit": int(len(ds.X)),
            "cv": config.cv,
            "cv_repeats": config.cv_repeats,
            "seed": config.seed,
            "test_size": config.test_size,
            # how the rows relate (tuner.evaluation.folds); neither column is needed to predict
            "groups": config.groups or None,
            "n_groups": config.n_groups or None,
            "time_column": config.time_column or None,
            "gap": config.gap,
            "weights": config.weights or None,  # used in the refit; not needed to predict
        },
        "calibration": calibration_card(config, row),
        "decision": decision_card(config, row),
        "refit_seconds": round(seconds, 3),
        # a plug-in family's model needs its module wherever it is loaded (and --trust-module)
        "plugins": {f: config.plugins[f] for f in _families(family, row["params"]) if f in config.plugins} or None,
        "versions": artifact.installed_versions(tuple(dict.fromkeys(
            lib for f in _families(family, row["params"]) for lib in artifact.libraries_for(f)))),
    }


def decision_card(config, row: dict) -> dict | None:
    """How a binary model turns its probability into a label (``tuner.evaluation.threshold``): the cut
    the model answers the positive class from (None: its most probable class), chosen for which
    metric, and that metric at the cut and at 0.5, cross-fitted on the run's folds."""
    if config.task != "binary":
        return None
    cut = row.get("threshold")
    if not cut:
        return {"threshold": None, "positive_class": config.classes[1],
                "why": "no out-of-fold predictions kept for this row: the most probable class"}
    tuned = cut.get("tuned", cut["threshold"] is not None)
    return {"threshold": cut["threshold"], "tuned": tuned, "positive_class": config.classes[1],
            "metric": cut["metric"], "cv": cut["cv"], "at_plain": cut["at_plain"], "rows": cut["rows"],
            "why": ("chosen on out-of-fold predictions; each fold's score at a cut chosen on the other folds"
                    if tuned else "no cut beat the model's own labels on held-back folds: its most probable class"
                    + ("" if cut["threshold"] is None else ", which its calibrated probability "
                       f"{cut['threshold']:.3f} stands for (its uncalibrated 0.5)"))}


def decision_line(decision: dict | None) -> str | None:
    """What a binary model's card says of its labels, in a line (None: not a binary model)."""
    if not decision:
        return None
    name, positive = decision.get("metric"), decision["positive_class"]
    if decision["threshold"] is None or not decision.get("tuned", True):
        return f"labels: the most probable class ({decision['why']})"
    at, plain = ((decision["cv"].get(name) or {}).get("mean"), decision["at_plain"].get(name))
    at, plain = ("—" if v is None else f"{v:.4f}" for v in (at, plain))
    return (f"labels: {positive!r} from probability {decision['threshold']:.3f}, chosen for {name} "
            f"({at} cross-validated at that cut, {plain} with its own labels); `tuner predict --threshold X` overrides it")


def _families(family: str, params: dict) -> list[str]:
    """The family, or an ensemble's members' families."""
    return [m["model"] for m in params["members"]] if family == ENSEMBLE else [family]


def export_model(
    out: str | Path, *, run: str | None = None, storage: str | None = None, family: str | None = None,
    onnx: bool = False, n_jobs: int = 1, data=None, importance: bool = False, trust_modules=(), on_step=None,
) -> ExportResult:
    """Refit the run's winner (or ``family``'s best) and write the artifact folder ``out``
    (``data``: the run's table, for a run made from an in-memory DataFrame); the card holds its
    permutation importances with ``importance=True``. The run's kept final model
    (``tuner.deploy.kept_model``) is written as it is, without a refit, while it is the one asked for. ``trust_modules``: packages whose classes
    (a plug-in family's) may go in the skops file; loading needs the same permission. ``on_step(text,
    estimate_s)``: called as each step starts (reading the data, the refit, the importances, ONNX),
    with an estimate in seconds or None; a plain callable (the CLI shows it, ``tuner.cli.activity``)."""
    if onnx:  # fail before the (possibly long) refit when the extra is missing
        from tuner.deploy.onnx_export import require_onnx

        require_onnx()
    config, row, kept, why = kept_for(run=run, storage=storage, family=family)
    if kept is not None:
        return _export_kept(Path(out), config, row, kept, onnx=onnx, data=data, importance=importance,
                            n_jobs=n_jobs, trust_modules=tuple(trust_modules or ()), on_step=on_step or _no_step)
    result = _refit_row(config, row, storage, n_jobs=n_jobs, data=data, importance=importance, on_step=on_step)
    fitted, ds, card = result.fitted, result.data, result.card

    from tuner.deploy import mlflow_model

    def extra(folder: Path, card_: dict) -> None:
        card_["mlflow"] = mlflow_model.write(folder, card_)  # MLmodel: the folder is an MLflow model too
        if onnx:
            from tuner.deploy import onnx_export

            (on_step or _no_step)(*ONNX_STEP)
            card_["onnx"] = onnx_export.write_onnx(fitted, card_, ds.X, folder)

    (on_step or _no_step)(f"writing {out}", None)
    card = artifact.write(fitted, card, Path(out), extra=extra, trust_modules=tuple(trust_modules or ()))
    return ExportResult(Path(out), card, fitted, result.fit_seconds, note=why)


def _export_kept(out: Path, config, row: dict, kept: dict, *, onnx: bool, data, importance: bool, n_jobs: int,
                 trust_modules: tuple[str, ...], on_step) -> ExportResult:
    """Write the run's kept final model to ``out`` as it is (no refit); ONNX and importances added on request."""
    from tuner.data.dataset import load_split_for_run

    on_step(f"copying the run's final model of {row['model']} (no refit) to {out}", None)
    src = Path(kept["path"])
    card = artifact.read_card(src)
    card["exported_at"] = now_iso()
    card["leaderboard_row"] = {k: v for k, v in row.items() if k != "params"}  # now with its held-out scores
    loaded = [artifact.load(src, trust_modules=trust_modules).pipeline]  # checksums and types checked

    def extra(folder: Path, card_: dict) -> None:
        if importance or onnx:
            on_step(f"reading the run's data ({config.source})", None)
            train, test = load_split_for_run(config, data)
            if importance:
                card_["feature_importance"] = _importances(config, row, train, test, n_jobs, on_step)
            if onnx:
                from tuner.deploy import onnx_export

                on_step(*ONNX_STEP)
                card_["onnx"] = onnx_export.write_onnx(loaded[0], card_, train.X, folder)

    card = artifact.copy(src, card, out, extra=extra)
    return ExportResult(out, card, loaded[0], float(card.get("refit_seconds") or 0.0), kept=True)


__all__ = ["export_model", "refit_best", "ExportResult", "refit", "choose_row"]
