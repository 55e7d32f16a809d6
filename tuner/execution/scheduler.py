"""Which family gets the next trial: the budget goes where it pays.

Families owed a number of trials (``--trials N``) simply take turns. Under a clock only
(``--timeout`` with no trial count) the worker shares its *time* between the families:

* every family first gets one result (its enqueued defaults), cheapest families first, so
  the run has a model early and no family is starved of a first score;
* then each family's share of the time is its chance of beating the leader: with its best
  trial's mean and fold spread against the leader's (a one-sided normal tail of the gap
  over the standard errors), floored at ``FLOOR`` so no family is ever starved;
* the next trial goes to the family that has used the least time relative to its share
  (a weighted fair queue): cheap families get more trials for the same share, families
  far behind get a trickle, and a family that catches up gets its share back at once.
"""

from __future__ import annotations

import math

FLOOR = 0.1  # the smallest time share of a family, relative to the leader's 1.0
UNKNOWN = 0.5  # the share of a family that was tried but has no result yet
REFRESH_EVERY = 8  # trials between re-reads of the other families' bests (other workers' results)


class _Best:
    __slots__ = ("value", "se")

    def __init__(self, value: float, se: float):
        self.value, self.se = value, se


class FamilyScheduler:
    def __init__(self, families, *, metric: str, direction: str, by_time: bool):
        self.families = list(families)
        self.metric = metric
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.by_time = by_time
        self.spent = {f.name: 0.0 for f in self.families}
        self.best: dict[str, _Best | None] = {}
        self._turn = 0
        self._since_refresh = 0

    # -- bookkeeping ----------------------------------------------------------------------
    def record(self, fam, seconds: float, state: str) -> None:
        """A trial of ``fam`` took ``seconds`` and ended in ``state``."""
        self.spent[fam.name] = self.spent.get(fam.name, 0.0) + max(seconds, 1e-3)
        known, value = self.best.get(fam.name), getattr(fam, "last_value", None)
        no_better = known is not None and value is not None and self.sign * value <= self.sign * known.value
        if (state == "complete" and not no_better) or fam.name not in self.best:
            self.best[fam.name] = _read_best(fam.study, self.metric)  # a storage read: only when it moved
        self._since_refresh += 1
        if self._since_refresh >= REFRESH_EVERY:
            self._since_refresh = 0
            for f in self.families:
                self.best[f.name] = _read_best(f.study, self.metric)

    def shares(self) -> dict[str, float]:
        """Each family's time share in [FLOOR, 1]: 1 for the leader, UNKNOWN for a family without a result."""
        known = {n: b for n, b in self.best.items() if b is not None}
        if not known:
            return {f.name: 1.0 for f in self.families}
        leader = max(known.values(), key=lambda b: self.sign * b.value)
        out = {}
        for f in self.families:
            b = known.get(f.name)
            if b is None:  # tried, no result yet (stopped by the clock, failed): unknown, and slow
                out[f.name] = UNKNOWN
                continue
            gap = self.sign * (leader.value - b.value)  # >= 0: how far behind
            spread = math.sqrt(b.se ** 2 + leader.se ** 2) + 1e-12
            p = 0.5 * math.erfc((gap / spread) / math.sqrt(2))  # P(a normal draw closes the gap)
            out[f.name] = max(FLOOR, min(1.0, 2 * p))
        return out

    # -- the choice -----------------------------------------------------------------------
    def order(self, candidates: list) -> list:
        """``candidates`` (families that may run a trial now), best first."""
        if not candidates:
            return []
        if not self.by_time:
            n = len(self.families)
            names = [f.name for f in self.families]
            start = self._turn % n
            rank = {name: (i - start) % n for i, name in enumerate(names)}
            ordered = sorted(candidates, key=lambda f: rank.get(f.name, n))
            return ordered
        untried = [f for f in candidates if not f.has_result() and self.spent.get(f.name, 0.0) == 0.0]
        if untried:  # a first trial for everyone, in the configured (cheapest-first) order
            return untried + [f for f in candidates if f not in untried]
        shares = self.shares()
        return sorted(candidates, key=lambda f: self.spent.get(f.name, 0.0) / shares.get(f.name, 1.0))

    def ran(self, fam) -> None:
        """``fam`` just had its turn: the family after it is next (count budgets)."""
        names = [f.name for f in self.families]
        if fam.name in names:
            self._turn = names.index(fam.name) + 1


def _read_best(study, metric: str) -> _Best | None:
    try:
        trial = study.best_trial
    except ValueError:
        return None
    value = trial.value
    stats = (trial.user_attrs.get("metrics") or {}).get(metric) or {}
    folds = [v for v in (stats.get("folds") or []) if v is not None]
    std = stats.get("std") or 0.0
    se = float(std) / math.sqrt(max(1, len(folds))) if folds else float(std)
    return _Best(float(value), se)


__all__ = ["FamilyScheduler", "FLOOR"]
