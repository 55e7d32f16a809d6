"""One model family's state during an invocation, and the one rule that sets a family aside.

The driver runs a family's trials and ``record``s each outcome; the worker loop, the local helper
processes and their supervisor read ``active`` and call ``set_aside``. A family is set aside when
its trials keep failing (``record``: ``MAX_FAILURES_WITHOUT_RESULT`` in a row before it has a
result, at most its trial target; ``MAX_FAILURES_IN_A_ROW`` after), when it is too slow for the
clock (``record``: ``MAX_CAPPED_WITHOUT_RESULT`` trials stopped by the time cap before a result), or when the supervisor of ``--trial-timeout`` helpers sees its trials
killed again and again. The leaderboard and ``tuner run`` say why (``aside_reason``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import optuna

import search_spaces
from tuner.storage import out_of_fold

# After a family has a result, this many failed trials in a row (in one worker) set it aside.
MAX_FAILURES_IN_A_ROW = 25
# A family whose first trials all fail this many times in a row (at most its trial target) is
# set aside for the rest of the invocation.
MAX_FAILURES_WITHOUT_RESULT = 5
# A family whose trials are stopped by the time cap (tuner.search.trial.TRIAL_SHARE of the clock)
# this many times before it has a result is too slow for the budget and is set aside.
MAX_CAPPED_WITHOUT_RESULT = 2


def too_slow(capped: int) -> str:
    """Why a family is set aside as too slow, in the words of ``tuner run``'s note and of the
    leaderboard's status (``tuner.results.leaderboard.family_row``)."""
    return f"too slow for the time budget ({capped} trials stopped by the time cap)"


def failing(failures: int) -> str:
    """Why a family whose trials keep failing is set aside, in the same words everywhere."""
    return f"{failures} failed trials in a row"


@dataclass
class FamilyState:
    name: str
    study: optuna.Study
    space: search_spaces.SearchSpace
    remaining: float  # trials still to run in this invocation (inf: until the timeout)
    durations: list[float] = field(default_factory=list)
    completed: int = 0
    done_now: int = 0
    failures_in_a_row: int = 0
    capped: int = 0  # trials stopped by the time cap
    gave_up: bool = False  # set aside for the rest of the invocation
    aside: str = ""  # why the family was set aside, when not for failures in a row
    finished: bool = False  # the family has its target of complete trials (tuner.execution.budget)
    target: int | None = None
    last_value: float | None = None  # the score of this invocation's last complete trial
    top: list[float] = field(default_factory=list)  # the best complete scores seen (tuner.storage.out_of_fold.KEEP)

    def has_result(self) -> bool:
        return self.completed > 0

    @property
    def active(self) -> bool:
        """Neither at its target of complete trials nor set aside: the loop may run its trials."""
        return not (self.finished or self.gave_up)

    def aside_reason(self) -> str:
        return self.aside or failing(self.failures_in_a_row)

    def set_aside(self, reason: str = "") -> None:
        self.gave_up = True
        if reason:
            self.aside = reason

    def failure_limit(self) -> int:
        """Failed trials in a row that set this family aside."""
        if self.has_result():
            return MAX_FAILURES_IN_A_ROW
        return min(MAX_FAILURES_WITHOUT_RESULT, self.target) if self.target else MAX_FAILURES_WITHOUT_RESULT

    def record(self, state: str, seconds: float, *, capped: bool = False) -> None:
        """Count a trial of this invocation that ended ``state`` ("complete", "failed", "pruned",
        "stopped"; ``capped``: stopped by the time cap) after ``seconds``; too many failures in a row,
        or too many capped trials before a result, set the family aside."""
        self.durations.append(seconds)
        self.done_now += 1
        if state == "complete":
            self.completed += 1
            self.failures_in_a_row = 0
        elif state == "failed":
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.failure_limit():
                self.set_aside()
        if capped:
            self.capped += 1
            if not self.has_result() and self.capped >= MAX_CAPPED_WITHOUT_RESULT:
                self.set_aside(too_slow(self.capped))

    def note_top(self, value: float, greater: bool) -> bool:
        """Note a complete trial's ``value`` among the family's best; whether it is one of them."""
        self.top = sorted([*self.top, value], reverse=greater)[:out_of_fold.KEEP]
        return value in self.top

    def expected_duration(self) -> float:
        return float(np.median(self.durations[-5:])) if self.durations else 0.0


__all__ = ["FamilyState", "too_slow", "failing", "MAX_FAILURES_IN_A_ROW", "MAX_FAILURES_WITHOUT_RESULT", "MAX_CAPPED_WITHOUT_RESULT"]
