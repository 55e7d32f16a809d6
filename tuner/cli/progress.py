"""Progress display during a run: a live Rich table on a terminal, silence otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    """Families, trials done, best so far and time left; a no-op when stderr is not a terminal."""

    def __init__(self, families: list[str], trials: int | dict | None, timeout: float | None, metric: str,
                 console: Console | None = None, enabled: bool | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.metric = metric
        self.deadline = time.monotonic() + timeout if timeout else None
        self._progress = Progress(
            TextColumn("{task.description:<20}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("{task.fields[left]}"),
            console=self.console, disable=not self.enabled, transient=False,
        )
        totals = trials if isinstance(trials, dict) else {f: trials for f in families}  # per family, or one for all
        self._tasks = {f: self._progress.add_task(f, total=totals.get(f), status="waiting", left="") for f in families}

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    def update(self, family: str, done: int, best: float | None, last_state: str) -> None:
        best_text = f"best {self.metric} {best:.4f}" if best is not None else "no result yet"
        left = ""
        if self.deadline is not None:
            left = f"{max(0.0, self.deadline - time.monotonic()):.0f}s left"
        self._progress.update(self._tasks[family], completed=done, status=f"{best_text} (last: {last_state})", left=left)
