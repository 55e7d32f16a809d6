"""When a clocked run may end before its clock: the leaderboard has stopped moving.

``tuner run --timeout T --early-stop`` (``tuner.tune(..., early_stop=True)``) lets the workers of a
run stop once, past ``MIN_SHARE`` of the tuning clock, the run's best cross-validated score has not
moved by more than ``NOISE_SHARE`` of its standard error (the spread of its fold scores over the
square root of their number) for the last ``STILL_SHARE`` of the clock, and every family still in
the search has a result. An improvement that small is inside the noise of the CV estimate: it
would not be expected to show on new rows. The rule reads the trials every worker stored (and its
own in memory), so it holds for a run shared by several processes or machines; the first worker
that finds the run flat records why in the run's budget (``tuner.execution.budget.stop_early``)
and the others stop at their next trial. A new invocation's budget clears it.

The thresholds were set before measuring (no tuning on the suites); what the rule saves and costs is
measured in benchmarks/RESULTS.md, "time to quality", and decides the default.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from tuner.execution import budget

MIN_SHARE = 0.3  # never before this share of the tuning clock has passed
STILL_SHARE = 0.3  # the best must have stood still for this share of the clock
NOISE_SHARE = 0.25  # a move within this share of the best's standard error is not a move
CHECK_S = 1.0  # a worker looks at most this often
# Off unless asked for (--early-stop): on both suites at 60 s it cut the mean wall from 57 to 40 s
# and lost 0.0036 of the mean normalised holdout score (one outlier table left out), more than
# the 0.002 a default may lose (benchmarks/RESULTS.md, "time to quality").
DEFAULT = False


@dataclass(frozen=True)
class Point:
    """A complete trial: when it finished (epoch seconds), its mean CV score, its fold scores."""

    at: float
    value: float
    folds: tuple[float, ...] = ()


def points(trials: Iterable[FrozenTrial]) -> list[Point]:
    out = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.value is None or t.datetime_complete is None:
            continue
        if not math.isfinite(t.value):
            continue
        out.append(Point(t.datetime_complete.timestamp(), float(t.value),
                         tuple(float(v) for v in t.intermediate_values.values())))
    return out


def standard_error(folds: tuple[float, ...]) -> float:
    """The standard error of a mean over ``folds`` (0 with fewer than two)."""
    if len(folds) < 2:
        return 0.0
    return float(np.std(folds, ddof=1) / math.sqrt(len(folds)))


def verdict(run_points: list[Point], *, greater: bool, clock_s: float, started_at: float,
            now: float) -> str | None:
    """Why the run may stop now (None: it may not): see the module doc."""
    elapsed = now - started_at
    if not run_points or clock_s <= 0 or elapsed < MIN_SHARE * clock_s:
        return None
    window = STILL_SHARE * clock_s
    better = (lambda a, b: a > b) if greater else (lambda a, b: a < b)
    ordered = sorted(run_points, key=lambda p: p.at)
    best = then = None
    for p in ordered:
        if best is None or better(p.value, best.value):
            best = p
        if p.at <= now - window:
            then = best  # the best that stood when the window began
    if then is None:
        return None  # nothing had finished when the window began: too early to tell
    tolerance = NOISE_SHARE * standard_error(best.folds)
    if abs(best.value - then.value) > tolerance:
        return None
    return (f"the best CV score ({best.value:.4g}) has moved by {abs(best.value - then.value):.2g} in the last "
            f"{window:.0f}s, within {NOISE_SHARE:g} of its standard error ({standard_error(best.folds):.2g})")


class Watch:
    """One worker's check of the rule, at most every ``CHECK_S``; ``None`` when it is off."""

    def __init__(self, storage, run: str, spent: budget.Budget, greater: bool):
        self.storage, self.run, self.greater = storage, run, greater
        self.clock_s = float(spent.timeout_s)
        self.started_at = float(spent.deadline) - self.clock_s
        self.next_check = 0.0

    @classmethod
    def of(cls, storage, config, *, by_time: bool) -> Watch | None:
        if not by_time:
            return None
        spent = budget.read(storage, config)
        if not spent.early_stop or spent.timeout_s is None or spent.deadline is None:
            return None
        return cls(storage, config.run, spent, config.direction == "maximize")

    def check(self, families, studies: dict) -> str | None:
        """Why this worker should stop (the run is flat, or another worker found it so), else None.
        ``studies``: family name → the study this worker sees it through (in memory or stored)."""
        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + CHECK_S
        stopped = budget.stopped_early(self.storage, self.run)
        if stopped:
            return stopped
        if any(f.active and not f.has_result() for f in families):
            return None  # a family still in the search has no result yet
        run_points = [p for f in families for p in points(studies[f.name].get_trials(deepcopy=False))]
        reason = verdict(run_points, greater=self.greater, clock_s=self.clock_s, started_at=self.started_at,
                         now=time.time())
        if reason is not None:
            reason = f"stopped early after {time.time() - self.started_at:.0f}s of the {self.clock_s:.0f}s clock: {reason}"
            return budget.stop_early(self.storage, self.run, reason)
        return None


__all__ = ["Watch", "verdict", "Point", "points", "DEFAULT", "MIN_SHARE", "STILL_SHARE", "NOISE_SHARE"]
