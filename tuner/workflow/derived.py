"""The writes of what is derived from a run's trials: the ensemble selection and the held-out
refit scores (the final model is kept by ``tuner.deploy.final_fit``, called from
``tuner.workflow.run``).

``tuner.results`` reads these from the storage and never writes: a reader that finds them missing
or stale works them out in memory for itself (the ensemble) or shows the row without them (refit
scores). Entry points that should bring them up to date (the end of a run or a worker, ``tuner
leaderboard`` / ``tuner report`` after more trials) call this module.
"""

from __future__ import annotations

from tuner.config import RunConfig, now_iso
from tuner.data.dataset import Dataset, load_split_for_run
from tuner.errors import TunerError
from tuner.results import ensemble
from tuner.results import leaderboard as lb
from tuner.results.holdout import refit_and_score
from tuner.storage.runs import load_family_study


def store_ensemble(storage, config: RunConfig, studies: dict | None = None) -> dict | None:
    """Select the run's ensemble from its current best trials and store it on the run's study
    (nothing is written when the stored selection is already of these candidates)."""
    trials_by_family = {}
    for family in config.families:
        study = (studies or {}).get(family) or load_family_study(storage, config.run, family)
        trials_by_family[family] = study.get_trials(deepcopy=False) if study is not None else []
    result, fresh = ensemble.selection(storage, config, trials_by_family)
    if result is not None and not fresh:
        ensemble.run_study(storage, config).set_user_attr(ensemble.RESULT_ATTR, result)
    return result


def score_best(storage, config: RunConfig, train: Dataset, test: Dataset | None, *, metric: str | None = None,
               n_jobs: int = 1, force: bool = False, fitted: tuple[str, dict, object] | None = None,
               rows: list[dict] | None = None) -> dict[str, dict]:
    """Refit and score each family's best trial (by ``metric``) that has no stored scores yet.

    ``fitted``: (family, params, estimator) already fitted on ``train`` (the run's final model),
    scored as it is when it is still that family's best; ``rows``: the leaderboard by ``metric``, when
    the caller has it. Returns {family: entry} for what was scored now; a failing refit is recorded
    with its reason (``error``) rather than stopping the others.
    """
    done = {}
    for row in lb.build(storage, config, metric) if rows is None else rows:
        if row["status"] != "ok":
            continue
        study, key = lb.refit_scores_place(storage, config, row)
        if not force and lb.stored_refit_scores(study, key) is not None:
            continue
        try:
            reuse = fitted[2] if fitted and fitted[:2] == (row["model"], row["params"]) else None
            entry = refit_and_score(config, row["model"], row["params"], train, test, n_jobs, fitted=reuse,
                                    threshold=(row.get("threshold") or {}).get("threshold"),
                                    calibration=row.get("calibration"))
        except TunerError:
            raise
        except Exception as exc:  # a refit can fail where CV folds did not (e.g. memory): say why
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            entry = {"error": f"{type(exc).__name__}: {first}"[:300], "train": None, "test": None,
                     "scored_at": now_iso()}
        entries = dict(study.user_attrs.get(lb.REFIT_ATTR) or {})
        entries[key] = entry
        study.set_user_attr(lb.REFIT_ATTR, entries)
        done[row["model"]] = entry
    return done


def missing(storage, config: RunConfig, metric: str | None = None, rows: list[dict] | None = None) -> list[str]:
    """Families whose current best trial (by ``metric``; ``rows``: the leaderboard by it) has no stored refit scores."""
    out = []
    for row in lb.build(storage, config, metric) if rows is None else rows:
        if row["status"] == "ok" and lb.stored_refit_scores(*lb.refit_scores_place(storage, config, row)) is None:
            out.append(row["model"])
    return out


def ensure_scores(storage, config: RunConfig, metric: str | None = None, n_jobs: int = 1) -> str | None:
    """Bring what is derived up to date for a reader: store the current ensemble, score best trials
    that lack refit scores (reloading the run's data); a note when the scores cannot be made.

    Used by ``tuner leaderboard`` / ``tuner report`` (and the API's) so that a best trial that
    changed after the run (workers, re-ranking by another metric) still shows its test score.
    """
    store_ensemble(storage, config)
    if not config.test_size:
        return None
    rows = lb.build(storage, config, metric)  # once: what is missing, then what to score
    if not missing(storage, config, metric, rows):
        return None
    try:
        train, test = load_split_for_run(config)
    except TunerError as exc:
        return f"test and training scores of some best trials are not available: {exc}"
    score_best(storage, config, train, test, metric=metric, n_jobs=n_jobs, rows=rows)
    return None


__all__ = ["store_ensemble", "score_best", "missing", "ensure_scores"]
