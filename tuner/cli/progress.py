"""Progress display during a run: a live Rich table on a terminal, silence otherwise.

Per family: its complete trials out of what the invocation owes it (``--trials N``: pruned and
failed trials do not count toward N, as in ``tuner.execution.budget``; they are shown beside it),
the best score so far, and the time left on the clock. The time left is computed from the clock
at every refresh, for every family alike (``time_left``), never from when a family last reported.
Under trial counts a line under the table estimates the time the rest will take (``estimate_s``),
from the seconds each family's trials have taken so far; it appears once the first trial has
completed and is updated after every trial. Off a terminal nothing is drawn: pipes and logs get
the results only (standard error stays empty).
"""

from __future__ import annotations

import math
import statistics
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text


def _clock() -> float:
    return time.monotonic()


def time_left(deadline: float | None, now: float) -> str:
    """The text of the 'left' column: seconds from ``now`` to ``deadline`` (both ``time.monotonic()``),
    the same for every family at a given moment; empty without a clock."""
    if deadline is None:
        return ""
    return f"{max(0.0, deadline - now):.0f}s left"


def estimate_s(seconds: dict[str, float], complete: dict[str, int], totals: dict[str, int | None]) -> float | None:
    """Seconds the rest of a counted invocation should take: for each family, the complete trials
    it still owes times the seconds a complete trial has cost it so far (its pruned and failed
    trials included); a family with no complete trial yet costs at least what it has spent per
    trial owed, and a family not tried yet the median cost of the others. None: no family has
    a complete trial yet, or there are no counts (a clock alone)."""
    if not totals or any(t is None for t in totals.values()):
        return None
    known = {f: seconds.get(f, 0.0) / complete[f] for f in totals if complete.get(f, 0) > 0}
    if not known:
        return None
    typical = statistics.median(known.values())
    left = 0.0
    for family, total in totals.items():
        owed = max(0, total - complete.get(family, 0))
        if not owed:
            continue
        if family in known:
            cost = known[family]
        elif seconds.get(family, 0.0) > 0:  # tried, nothing complete yet: at least what it has spent
            cost = max(typical, seconds[family])
        else:
            cost = typical
        left += owed * cost
    return left


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds)):.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _TimeLeftColumn(ProgressColumn):
    """The 'left' column, from the clock at each refresh."""

    def __init__(self, deadline: float | None):
        super().__init__()
        self.deadline = deadline

    def render(self, task) -> Text:
        return Text(time_left(self.deadline, _clock()))


class _Table(Progress):
    """The families' rows, then the estimate line (when there is one)."""

    estimate_line = ""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        if self.estimate_line:
            yield Text(self.estimate_line)


class RunProgress:
    """Families, complete trials, best so far and time left; a no-op when stderr is not a terminal."""

    def __init__(self, families: list[str], trials: int | dict | None, timeout: float | None, metric: str,
                 console: Console | None = None, enabled: bool | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.metric = metric
        self.deadline = _clock() + timeout if timeout else None
        self._progress = _Table(
            TextColumn("{task.description:<20}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), _TimeLeftColumn(self.deadline),
            console=self.console, disable=not self.enabled, transient=False,
        )
        totals = trials if isinstance(trials, dict) else {f: trials for f in families}  # per family, or one for all
        self.totals = {f: totals.get(f) for f in families}
        self.states: dict[str, dict[str, int]] = {f: {} for f in families}
        self.seconds: dict[str, float] = {f: 0.0 for f in families}
        self._last = _clock()
        self._tasks = {f: self._progress.add_task(f, total=self.totals[f], status="waiting") for f in families}

    def __enter__(self):
        self._progress.start()
        self._last = _clock()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    @property
    def estimate_line(self) -> str:
        return self._progress.estimate_line

    def update(self, family: str, done: int, best: float | None, last_state: str) -> None:
        """One more trial of ``family`` ended ``last_state`` (``done``: its trials this invocation,
        any state); the bar counts complete trials only, never past the family's total."""
        now = _clock()
        # one worker: the time since the last report is this trial's; several: the wall time shared out
        self.seconds[family] = self.seconds.get(family, 0.0) + max(0.0, now - self._last)
        self._last = now
        states = self.states.setdefault(family, {})
        states[last_state] = states.get(last_state, 0) + 1
        complete = states.get("complete", 0)
        total = self.totals.get(family)
        best_text = f"best {self.metric} {best:.4f}" if best is not None else "no result yet"
        extra = [f"{states[s]} {s}" for s in ("pruned", "stopped", "failed") if states.get(s)]
        status = best_text + (f" (+{', '.join(extra)})" if extra else "") + f" (last: {last_state})"
        self._progress.update(self._tasks[family], completed=min(complete, total) if total is not None else complete,
                              status=status)
        left = estimate_s(self.seconds, {f: s.get("complete", 0) for f, s in self.states.items()}, self.totals)
        if left is not None:
            owed = sum(max(0, t - self.states[f].get("complete", 0)) for f, t in self.totals.items())
            self._progress.estimate_line = (
                f"estimate: about {duration_text(left)} more for {owed} complete trial{'s' if owed != 1 else ''} "
                "still owed (from the trials so far; pruned and failed trials do not count toward --trials)"
                if owed else "estimate: every family has its complete trials")
