"""Where the run's final model is kept and whether it is still the one to export. It is fitted at the end of ``tuner run`` / ``tuner.tune`` inside the clock, kept
beside the storage, and handed out by ``tuner export`` / ``tuner.best_model`` without a refit
(``tuner.deploy.final_fit``).

Under ``--timeout T`` the tuning stops ``reserve_s(T)`` before the clock (``RESERVE_SHARE`` of it);
the time left then goes to refitting the winner on all training rows. Its refit time is estimated
from the fold fits it measured (``estimate_s``: the mean fold fit, times the rows of a refit over
the rows of a fold, times ``ESTIMATE_MARGIN``; an ensemble's members one after the other). When the
estimate says the winner will not end inside the clock, the best row whose estimate fits is kept
instead, and the output and the card say so. The fit itself runs under the watchdog
(``tuner.execution.fit_watchdog``): one still running at the clock is given up on, and the row
with the smallest estimate is fitted instead, so a clocked run always ends with a model and never
quietly far past its clock. A run without a clock refits its winner at its end, unbounded.

Where it is kept: a folder per run beside a SQLite file (``<db>.models/<run>``); for any other
storage under ``$TUNER_MODEL_DIR`` (default ``./tuner_models``). The run's study records it
(user attribute ``final_model``: the path, the key of the row it was fitted from, the winner's key
when it was fitted, the estimate and the measured time), so ``export`` uses it exactly while the
leaderboard's winner is still the one it was chosen under; after more trials it refits, and says so.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import optuna

from tuner.models.ensemble import NAME as ENSEMBLE

ATTR = "final_model"
MODEL_DIR_ENV = "TUNER_MODEL_DIR"


def location(url: str, run: str) -> Path:
    """The folder the run's final model is kept in."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run)[:80] + "-" + hashlib.sha256(run.encode()).hexdigest()[:8]
    if url.startswith("sqlite:///") and ":memory:" not in url and url != "sqlite://":
        db = Path(url[len("sqlite:///"):].split("?", 1)[0])
        return db.resolve().parent / f"{db.name}.models" / safe
    base = Path(os.environ.get(MODEL_DIR_ENV) or "tuner_models").resolve()
    return base / hashlib.sha256(url.encode()).hexdigest()[:12] / safe


def row_key(row: dict) -> str:
    """What identifies the model of a leaderboard row: its trial, or the ensemble's members and weights."""
    if row["model"] == ENSEMBLE:
        return ENSEMBLE + ":" + ",".join(f"{m['model']}#{m['trial_number']}@{m['weight']:.4f}" for m in row["members"])
    return f"{row['model']}#{row['trial_number']}"


def run_study(store, config) -> optuna.Study:
    return optuna.load_study(study_name=config.run, storage=store)


def record(store, config) -> dict | None:
    """What the run's study says of its kept model (None: none kept)."""
    try:
        return run_study(store, config).user_attrs.get(ATTR)
    except KeyError:
        return None


def _pickled(folder: Path) -> bool:
    """Whether a model folder holds a pickle (its card says so)."""
    import json

    try:
        pipeline = json.loads(Path(folder, "model_card.json").read_text(encoding="utf-8")).get("pipeline") or {}
    except (OSError, ValueError):
        return True
    parts = pipeline.get("members") or [pipeline]
    return any(part.get("format") != "skops" for part in parts)


def usable(store, config, rows: list[dict], family: str | None) -> tuple[dict | None, str]:
    """(the kept record to export, or None; why not) for the winner (``family`` None) or ``family``'s best."""
    kept = record(store, config)
    if not kept:
        return None, "the run keeps no fitted model"
    if not Path(kept["path"], "model_card.json").is_file():
        return None, f"its kept model is not at {kept['path']} (another machine, or removed)"
    if kept.get("fingerprint") != config.fingerprint:
        return None, "its kept model was fitted on other data"
    if _pickled(Path(kept["path"])):  # e.g. a plug-in family's classes, outside skops' allow-list
        return None, "its kept model is a pickle, which is not loaded unasked, so it is refit"
    ok = [r for r in rows if r["status"] == "ok"]
    if family is None:
        if ok and row_key(ok[0]) == kept.get("winner_key"):
            return kept, ""
        return None, "the run has new trials since its model was kept, so the winner is refit"
    wanted = [r for r in ok if r["model"] == family]
    if wanted and row_key(wanted[0]) == kept.get("key"):
        return kept, ""
    return None, f"the kept model is {kept.get('family')}, not {family}'s best"


__all__ = ["ATTR", "MODEL_DIR_ENV", "location", "row_key", "record", "run_study", "usable"]
