"""The run's cross-validation folds: seeded, the same for every family and trial, so scores are paired.

* independent rows: stratified K-fold for classification, K-fold for regression, shuffled;
  ``repeats`` > 1 repeats the split with new shuffles;
* ``groups`` (``--groups``): no group on both sides of a fold: StratifiedGroupKFold for
  classification, GroupKFold for regression, groups shuffled with the seed; each repeat
  reshuffles the groups;
* ``time_ordered`` (``--time-column``; rows already sorted by time): forward folds with an
  expanding window (scikit-learn's TimeSeriesSplit) and ``gap`` rows left out between the
  training rows and the test rows. Every fold trains on the past only; the first rows are
  never a test row. Repeats would give the same folds again, so they are refused.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
)

from tuner.errors import TunerError

Fold = tuple[np.ndarray, np.ndarray]


def make_folds(y: np.ndarray, task: str, cv: int, seed: int, repeats: int = 1, *, groups: np.ndarray | None = None,
               time_ordered: bool = False, gap: int = 0) -> list[Fold]:
    """The (training rows, test rows) of every fold, repeats one after the other."""
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)):
        raise TunerError(f"--cv must be a whole number of folds (got {cv!r})")
    if cv < 2:
        raise TunerError(f"--cv must be at least 2 (got {cv})")
    if cv > len(y):
        raise TunerError(f"--cv {cv} is more than the {len(y)} rows; use fewer folds")
    if gap < 0:
        raise TunerError(f"--gap must be 0 or more rows (got {gap})")
    if gap and not time_ordered:
        raise TunerError("--gap is the number of rows left out between past and future: it needs --time-column")
    classification = task != "regression"
    if time_ordered:
        folds = _forward_folds(len(y), cv, repeats, gap)
    else:
        if classification:
            _check_rarest_class(y, cv)
        folds = _group_folds(y, classification, cv, seed, repeats, groups) if groups is not None else \
            _row_folds(y, classification, cv, seed, repeats)
    if task == "binary":
        _check_both_classes(y, folds, "forward" if time_ordered else "group" if groups is not None else "")
    return folds


def folds_for_run(config, ds, repeats: int | None = None) -> list[Fold]:
    """The folds of a run (a ``tuner.config.RunConfig``) on its prepared data ``ds``; ``repeats``
    overrides the run's (the report's out-of-fold predictions use one)."""
    return make_folds(ds.y, config.task, config.cv, config.seed, config.cv_repeats if repeats is None else repeats,
                      groups=ds.groups, time_ordered=bool(config.time_column), gap=config.gap)


def _row_folds(y: np.ndarray, classification: bool, cv: int, seed: int, repeats: int) -> list[Fold]:
    if classification:
        splitter = (StratifiedKFold(cv, shuffle=True, random_state=seed) if repeats == 1
                    else RepeatedStratifiedKFold(n_splits=cv, n_repeats=repeats, random_state=seed))
    else:
        splitter = (KFold(cv, shuffle=True, random_state=seed) if repeats == 1
                    else RepeatedKFold(n_splits=cv, n_repeats=repeats, random_state=seed))
    with warnings.catch_warnings():  # "The least populated class in y has only N members": noted by the caller
        warnings.simplefilter("ignore", UserWarning)
        return [(tr, te) for tr, te in splitter.split(np.zeros(len(y)), y)]


def _group_folds(y: np.ndarray, classification: bool, cv: int, seed: int, repeats: int,
                 groups: np.ndarray) -> list[Fold]:
    n_groups = len(np.unique(groups))
    if n_groups < cv:
        raise TunerError(f"only {n_groups} groups, fewer than --cv {cv}: a fold needs a group of its own; "
                         f"use --cv {max(2, n_groups)} or fewer" if n_groups >= 2 else
                         f"only {n_groups} group: folds that keep groups apart need at least 2; drop --groups")
    folds = []
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        state = int(rng.integers(2**31 - 1))  # a new shuffle of the groups per repeat, from the seed
        splitter = (StratifiedGroupKFold(cv, shuffle=True, random_state=state) if classification
                    else GroupKFold(cv, shuffle=True, random_state=state))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            folds += [(tr, te) for tr, te in splitter.split(np.zeros(len(y)), y, groups)]
    return folds


def _forward_folds(n: int, cv: int, repeats: int, gap: int) -> list[Fold]:
    if repeats > 1:
        raise TunerError(f"--cv-repeats {repeats} has no meaning with --time-column: forward folds are the same "
                         "every time; drop --cv-repeats")
    try:
        return [(tr, te) for tr, te in TimeSeriesSplit(n_splits=cv, gap=gap).split(np.zeros(n))]
    except ValueError:
        raise TunerError(f"{n} rows are too few for {cv} forward folds with --gap {gap}; "
                         "use fewer --cv folds or a smaller --gap") from None


def _check_rarest_class(y: np.ndarray, cv: int) -> None:
    counts = np.bincount(y)
    smallest = int(counts.min())
    # A multiclass problem may keep a class rarer than the folds (some test folds then lack
    # it: accuracy and f1 still score them); a binary one may not: its metrics need both
    # classes in every test fold.
    if smallest < cv and (len(counts) <= 2 or smallest < 2):
        raise TunerError(
            f"the rarest class has only {smallest} row(s), fewer than --cv {cv}; "
            f"use --cv {max(2, smallest)} or fewer, or drop that class"
        )


def _check_both_classes(y: np.ndarray, folds: list[Fold], kind: str) -> None:
    """Binary metrics (roc_auc, f1 of the positive class) need both classes in every fold's
    training and test rows: shuffled stratified folds have them; group and forward folds may not."""
    for i, (tr, te) in enumerate(folds):
        for rows, side in ((tr, "training"), (te, "test")):
            if len(np.unique(y[rows])) < 2:
                fix = ("use fewer --cv folds, or a --time-column under which both classes occur early"
                       if kind == "forward" else "use fewer --cv folds, or check the groups")
                raise TunerError(f"{kind + ' ' if kind else ''}fold {i + 1}'s {side} rows hold one class only, "
                                 f"which binary metrics cannot score; {fix}")


__all__ = ["make_folds", "folds_for_run", "Fold", "other_folds"]


def other_folds(f: int, folds_per_repeat: int, forward: bool = False) -> list[int]:
    """The folds whose rows choose what scores fold ``f`` honestly (the ensemble's weights, a decision
    threshold): the other folds of its repeat, or on a time-ordered run the earlier folds (none for the first)."""
    if forward:
        return list(range(f))
    first = (f // folds_per_repeat) * folds_per_repeat
    return [g for g in range(first, first + folds_per_repeat) if g != f]


# A choice made on other folds (a decision threshold, a calibration map) is kept when its gain on
# the held-back folds is more than this many standard errors of the per-fold gains: on pure noise a
# search over cuts or maps still finds one that wins on some folds.
MIN_GAIN_SE = 2.0


def carries_over(gains) -> bool:
    """Whether per-fold ``gains`` (positive: better; NaN ignored), each on a fold the choice was not
    made on, beat nothing by more than ``MIN_GAIN_SE`` standard errors."""
    gains = np.asarray(gains, dtype=float)
    gains = gains[np.isfinite(gains)]
    if not gains.size:
        return False
    error = gains.std(ddof=1) / np.sqrt(gains.size) if gains.size > 1 else 0.0
    return bool(gains.mean() > max(MIN_GAIN_SE * error, 1e-12))

