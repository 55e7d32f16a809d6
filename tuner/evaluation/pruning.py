"""Pruning across folds: stop a trial as soon as its folds say it cannot win.

Two rules, either one prunes (after a fold, never after the last):

* **clearly behind** — on the folds seen so far, the trial's mean is behind the family's
  best trial on the *same* folds by more than ``SIGMAS`` times the spread of the best
  trial's own fold scores. Scores are paired (every trial sees the same folds), so a gap
  that large after even one fold is not noise: a configuration scoring 0.26 where the best
  scores 0.79 ± 0.02 stops after its first fold instead of its fourth.
* **Wilcoxon** — the signed-rank test of the paired fold scores against the best trial
  (p < 0.1, from 2 folds on), as Optuna's ``WilcoxonPruner`` does it, for the trials that are
  only a little behind; it needs several folds before it can reach significance.

The driver keeps a running trial's fold scores in memory (``tuner.storage.trial_writes``) and asks
``prune_values``; the best trial's fold scores are read from the storage at most every
``REFRESH_S`` (a best that is a little old only prunes less), and the worker's own complete
trials update them in memory (``note_complete``).
``prune`` is the same decision behind Optuna's pruner interface.
"""

from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection

from tuner.evaluation.metrics import average_ranks

SIGMAS = 2.0
P_THRESHOLD = 0.1
MIN_FOLDS_FOR_TEST = 2
REFRESH_S = 5.0  # how old the best trial's fold scores may get before a new trial reads them again


class _KnownBest(NamedTuple):
    """The family's best trial as this pruner last knew it."""

    study: optuna.Study
    read_by: int  # the trial number that read it from the storage
    read_at: float  # time.monotonic() of that read
    value: float | None  # None: no complete trial then
    folds: dict[int, float]


class FoldPruner(BasePruner):
    """The two rules of the module doc, against the best trial of the family whose study it prunes."""

    def __init__(self, sigmas: float = SIGMAS, p_threshold: float = P_THRESHOLD):
        self.sigmas = sigmas
        self.p_threshold = p_threshold
        self._best: _KnownBest | None = None

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self.prune_values(study, trial.number, trial.intermediate_values)

    def prune_values(self, study: optuna.Study, number: int, seen: dict[int, float]) -> bool:
        """Whether trial ``number`` with fold scores ``seen`` (fold → score) should stop."""
        if not seen or not all(math.isfinite(v) for v in seen.values()):
            return False
        best = self._best_folds(study, number)
        common = [step for step in seen if step in best]
        if not common or len(best) < 2:
            return False
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        behind = [sign * (best[s] - seen[s]) for s in common]  # > 0: the trial is behind on that fold
        return self._clearly_behind(behind, best) or self._signed_rank(behind, best, seen, sign)

    def _best_folds(self, study: optuna.Study, number: int) -> dict[int, float]:
        """The family's best fold scores: read from the storage for a new trial once the last
        read is ``REFRESH_S`` old (other workers' results); this worker's own complete
        trials come in through :meth:`note_complete` without a read."""
        known = self._best
        if known is not None and known.study is study and (
                known.read_by == number or time.monotonic() - known.read_at < REFRESH_S):
            return known.folds
        try:
            best = study.best_trial
            value, folds = best.value, dict(best.intermediate_values)
        except ValueError:  # no complete trial yet
            value, folds = None, {}
        if not all(math.isfinite(v) for v in folds.values()):
            folds = {}
        self._best = _KnownBest(study, number, time.monotonic(), value, folds)
        return folds

    def note_complete(self, study: optuna.Study, value: float, folds: dict[int, float]) -> None:
        """This worker's trial completed with ``value`` and these fold scores: the new best if it beat it."""
        known = self._best
        if known is None or known.study is not study or not all(math.isfinite(v) for v in folds.values()):
            return
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        if known.value is None or sign * value > sign * known.value:
            self._best = known._replace(value=value, folds=dict(folds))

    def _clearly_behind(self, behind: list[float], best: dict[int, float]) -> bool:
        gap = math.fsum(behind) / len(behind)
        spread = _stdev(list(best.values()))
        return gap > self.sigmas * spread and gap > 1e-12

    def _signed_rank(self, behind: list[float], best: dict[int, float], seen: dict[int, float], sign: float) -> bool:
        if len(behind) < MIN_FOLDS_FOR_TEST:
            return False
        # as WilcoxonPruner: never prune a trial whose mean is at least the best trial's mean
        if sign * _mean(list(seen.values())) >= sign * _mean(list(best.values())):
            return False
        # H1: the trial's fold scores are worse than the best's
        return signed_rank_p(behind) < self.p_threshold


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _stdev(values: list[float]) -> float:
    """Sample standard deviation in floats (``statistics.stdev`` computes exactly in fractions,
    slow for a call made after every fold)."""
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


EXACT_UP_TO = 13  # SciPy's own limit for an exact answer when there are ties or zeros


def signed_rank_p(gaps: list[float]) -> float:
    """One-sided p-value of the Wilcoxon signed-rank test that ``gaps`` are above 0, with
    zeros split between the signs: ``scipy.stats.wilcoxon(gaps, alternative="greater",
    zero_method="zsplit")``.

    Fold scores such as accuracy on a few dozen rows tie often; SciPy then enumerates all
    2^n sign flips through its generic permutation test, a cost that doubles with each fold
    (repeated CV reaches 13), paid on every fold of every trial. The same exact distribution is
    counted here over the (half-integer) rank sums, once per pattern of ranks (without ties the
    pattern depends on the number of folds alone) and cached, so a fold costs little more than a
    table look-up.
    """
    values = [float(v) for v in gaps]
    doubled = np.rint(2 * average_ranks(np.abs(values))).astype(int).tolist()  # ranks are multiples of 1/2
    ties = len(set(doubled)) < len(values)
    if len(values) > EXACT_UP_TO and (ties or 0.0 in values):
        from scipy import stats

        return float(stats.wilcoxon(values, alternative="greater", zero_method="zsplit").pvalue)
    moving = tuple(sorted(d for d, v in zip(doubled, values) if v != 0))  # a zero adds half its rank whatever the signs
    observed = sum(d for d, v in zip(doubled, values) if v > 0)
    tail = _null_tail(moving)
    return tail[observed] if observed < len(tail) else 0.0


@functools.lru_cache(maxsize=4096)
def _null_tail(moving: tuple[int, ...]) -> tuple[float, ...]:
    """P(sum of the positive ranks ≥ s) for s = 0, 1, …, under H0 (every sign pattern of the
    ``moving`` doubled ranks equally likely)."""
    counts = np.zeros(sum(moving) + 1)
    counts[0] = 1.0
    for rank in moving:  # number of sign patterns giving each sum of positive ranks
        with_it = np.zeros_like(counts)
        with_it[rank:] = counts[: len(counts) - rank]
        counts += with_it
    total = counts.sum()  # counts are integers (≤ 2^13 patterns here): every sum below is exact
    return tuple(float(t / total) for t in np.cumsum(counts[::-1])[::-1])


__all__ = ["FoldPruner", "SIGMAS", "signed_rank_p"]
