"""The run's final fit: the winner (or what fits the clock) refit on all training rows at the end of
the run, then kept (``tuner.deploy.kept_model``, whose docstring says how it is chosen and where it
lives)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tuner.deploy.kept_model import ATTR, location, row_key, run_study
from tuner.errors import TunerError

RESERVE_SHARE = 0.12  # of a clock, kept for the final fit
RESERVE_MAX_S = 120.0
ESTIMATE_MARGIN = 1.3
GRACE_SHARE = 0.03  # the final fit may end this share of the clock late before it is given up on


def reserve_s(timeout: float) -> float:
    """Seconds of a ``timeout`` kept for the final fit (the tuning gets the rest)."""
    return min(RESERVE_MAX_S, RESERVE_SHARE * timeout)


def tuning_s(timeout: float | None) -> float | None:
    """The part of a clock the trials get; the rest is for the final fit (None: no clock)."""
    return None if timeout is None else timeout - reserve_s(timeout)


def estimate_s(config, row: dict) -> float | None:
    """Seconds a refit of ``row`` on all training rows should take (None: no measurement)."""
    fit = row.get("fit_time_s")
    if fit is None or fit != fit:
        return None
    scale = config.cv / max(1, config.cv - 1)  # a fold trains on (K-1)/K of the rows
    return float(fit) * scale * ESTIMATE_MARGIN


@dataclass
class Kept:
    family: str
    reason: str  # why this row (the winner, or what fitted inside the clock)
    estimate_s: float | None
    seconds: float
    path: Path | None
    note: str = ""  # what went wrong keeping it, if anything
    params: dict | None = None  # of the row fitted
    fitted: object = None  # the fitted pipeline, in memory (the held-out scores reuse it)


def choose(config, ok: list[dict], left_s: float | None) -> tuple[dict, str]:
    """The row to fit: the winner, unless a clock says it will not fit; then the best that does."""
    winner = ok[0]
    if left_s is None:
        return winner, "the winner"
    for r in ok:
        est = estimate_s(config, r)
        if est is not None and est <= left_s:
            if r is winner:
                return r, "the winner"
            return r, (f"the winner ({winner['model']}) would take ~{estimate_s(config, winner) or 0:.1f}s to refit "
                       f"with {left_s:.1f}s of the clock left; {r['model']} (rank {r['rank']}) fits")
    quickest = min(ok, key=lambda r: estimate_s(config, r) or float("inf"))
    return quickest, (f"no row's refit fits in the {left_s:.1f}s left; the quickest, {quickest['model']} "
                      f"(~{estimate_s(config, quickest) or 0:.1f}s)")


def fit_and_keep(store, url: str, config, ds, rows: list[dict], *, deadline_epoch: float | None,
                 timeout: float | None, n_jobs: int) -> Kept | None:
    """Fit the final model on ``ds`` (the run's training part), inside ``deadline_epoch`` when given,
    write it to the run's folder and record it. None: the run has no completed trial."""
    from tuner.deploy import artifact, mlflow_model
    from tuner.deploy.export import calibrated_as_row, card_for, refit
    from tuner.execution.fit_watchdog import FitTimeLimit, call_with_limit, release

    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    left = None if deadline_epoch is None else max(0.0, deadline_epoch - time.time())
    row, reason = choose(config, ok, left)
    est = estimate_s(config, row)
    try:
        if left is None:
            fitted, seconds = refit(config, row["model"], row["params"], ds, n_jobs=n_jobs)
        else:
            until = time.monotonic() + left + GRACE_SHARE * (timeout or 0.0)
            try:
                fitted, seconds = call_with_limit(
                    lambda: refit(config, row["model"], row["params"], ds, n_jobs=n_jobs), until, threads=n_jobs)
            finally:
                release()  # an idle fit thread slows every later OpenMP fit (fit_watchdog.release)
    except FitTimeLimit:
        quickest = min(ok, key=lambda r: estimate_s(config, r) or float("inf"))
        reason = f"{row['model']} did not end inside the clock (estimated ~{est or 0:.1f}s); {quickest['model']} instead"
        row, est = quickest, estimate_s(config, quickest)
        try:
            fitted, seconds = refit(config, row["model"], row["params"], ds, n_jobs=n_jobs)
        except TunerError as exc:
            return Kept(row["model"], reason, est, 0.0, None, note=str(exc))
    except TunerError as exc:  # the refit failed where the folds did not: export refits, and says why
        return Kept(row["model"], reason, est, 0.0, None, note=str(exc))
    fitted = calibrated_as_row(config, row, fitted)
    path = location(url, config.run)
    card = card_for(config, row, url, ds, seconds)
    card["final_fit"] = {"chosen": reason, "estimate_s": None if est is None else round(est, 3),
                         "seconds": round(seconds, 3), "clock_left_s": None if left is None else round(left, 3),
                         "winner": ok[0]["model"]}
    kept = Kept(row["model"], reason, est, seconds, path, params=row["params"], fitted=fitted)
    try:
        artifact.write(fitted, card, path, extra=lambda folder, c: c.update(mlflow=mlflow_model.write(folder, c)))
    except (OSError, TunerError, artifact.ArtifactError) as exc:
        kept.path, kept.note = None, f"the fitted model could not be kept at {path}: {exc}"
        return kept
    run_study(store, config).set_user_attr(ATTR, {
        "path": str(path), "family": row["model"], "key": row_key(row), "winner_key": row_key(ok[0]),
        "fingerprint": config.fingerprint, "reason": reason, "estimate_s": est, "seconds": seconds,
        "clock_left_s": left, "kept_at": time.time()})
    return kept


def line(kept: Kept | None) -> str:
    """What the run says of its final model."""
    if kept is None:
        return "Final model: none (no completed trial)"
    est = f", estimated {kept.estimate_s:.1f}s" if kept.estimate_s is not None else ""
    where = "; kept for `tuner export`" if kept.path is not None else f"; {kept.note}"
    why = "" if kept.reason == "the winner" else f" ({kept.reason})"
    return f"Final model: {kept.family} refit on all training rows in {kept.seconds:.1f}s{est}{why}{where}"


__all__ = ["reserve_s", "tuning_s", "estimate_s", "choose", "fit_and_keep", "line", "Kept"]
