"""Paired comparison of families on the same folds.

Every family of a run is scored on the same folds (``tuner.evaluation.cross_validation.make_folds``), so two
families' per-fold scores are paired. Plain paired t-tests on cross-validation scores
are too optimistic: the training sets of the folds overlap, so the fold differences
are correlated. The corrected resampled t-test (Nadeau & Bengio, 2003, "Inference for
the generalization error", Machine Learning 52) inflates the variance of the mean
difference from ``var/J`` to ``(1/J + n_test/n_train) * var``, with ``J`` the number of
fold differences (K folds x R repeats) and ``n_test/n_train = 1/(K-1)`` for K-fold CV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st

ALPHA = 0.05


@dataclass(frozen=True)
class PairedTest:
    """Result of comparing scores ``a`` with scores ``b`` fold by fold."""

    mean_diff: float  # mean of a - b
    t: float
    p_value: float  # two-sided
    dof: int
    n_pairs: int


def fold_size_ratio(cv: int) -> float:
    """n_test / n_train of one fold of K-fold CV: (1/K) / ((K-1)/K) = 1/(K-1)."""
    if cv < 2:
        raise ValueError(f"K-fold needs at least 2 folds (got {cv})")
    return 1.0 / (cv - 1)


def corrected_resampled_ttest(a: Sequence[float | None], b: Sequence[float | None], test_train_ratio: float) -> PairedTest:
    """Two-sided corrected resampled t-test of the per-fold scores ``a`` against ``b``.

    Folds where either score is missing (None / NaN) are left out. With no spread in the
    differences the test is degenerate: identical scores give p = 1, a constant non-zero
    difference gives p = 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same folds ({len(a)} vs {len(b)} values)")
    x = np.array([np.nan if v is None else v for v in a], dtype=float)
    y = np.array([np.nan if v is None else v for v in b], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    j = int(d.size)
    if j < 2:
        raise ValueError("the corrected t-test needs at least 2 paired folds")
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    dof = j - 1
    scale = math.sqrt((1.0 / j + test_train_ratio) * var)
    if scale <= 1e-15 * max(1.0, abs(mean)):
        if abs(mean) <= 1e-12:
            return PairedTest(mean, 0.0, 1.0, dof, j)
        return PairedTest(mean, math.copysign(math.inf, mean), 0.0, dof, j)
    t = mean / scale
    p = float(2.0 * _st.t.sf(abs(t), dof))
    return PairedTest(mean, float(t), min(1.0, p), dof, j)


def compare_with_leader(rows: list[dict], metric: str, cv: int, alpha: float = ALPHA) -> None:
    """Add ``p_value_vs_leader`` and ``tied_with_leader`` to leaderboard rows (in place).

    ``rows`` are ranked, best first; rows without a result (status != "ok") get None.
    The leader compares with itself: p-value None, tied True. A family is tied with the
    leader when the test cannot tell them apart at level ``alpha`` (p >= alpha).
    """
    ranked = [r for r in rows if r.get("status") == "ok"]
    for r in rows:
        if r.get("status") != "ok":
            r["p_value_vs_leader"] = None
            r["tied_with_leader"] = None
    if not ranked:
        return
    leader = ranked[0]
    lead_folds = (leader.get("fold_scores") or {}).get(metric)
    leader["p_value_vs_leader"] = None
    leader["tied_with_leader"] = True
    ratio = fold_size_ratio(cv)
    for r in ranked[1:]:
        folds = (r.get("fold_scores") or {}).get(metric)
        r["p_value_vs_leader"] = None
        r["tied_with_leader"] = None
        if not lead_folds or not folds or len(folds) != len(lead_folds):
            continue  # e.g. a trial from an older version of the run: no paired test possible
        try:
            res = corrected_resampled_ttest(lead_folds, folds, ratio)
        except ValueError:
            continue
        r["p_value_vs_leader"] = res.p_value
        r["tied_with_leader"] = bool(res.p_value >= alpha)


def verdict(row: dict, alpha: float = ALPHA) -> str:
    """Short text for the 'vs leader' column."""
    if row.get("status") != "ok":
        return "—"
    if row.get("rank") == 1:
        return "leader"
    p = row.get("p_value_vs_leader")
    if p is None:
        return "n/a"
    return f"{'tied' if row.get('tied_with_leader') else 'worse'} p={_fmt_p(p)}"


def _fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


__all__ = ["ALPHA", "PairedTest", "corrected_resampled_ttest", "compare_with_leader", "fold_size_ratio", "verdict"]
