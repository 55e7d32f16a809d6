"""What a long command is doing, on stderr: a spinner with the step and its elapsed time while it
runs, then one line per step with its estimate and the time it took. Nothing at all when stderr is
not a terminal (pipes, files, CI logs), as for ``tuner run``'s progress table.

The lower layers never import this: they take a plain ``on_step(text, estimate_s)`` callable
(``tuner.deploy.export``, ``tuner.results.importance``, ``tuner.results.html_report``) and an
``Activity`` is one.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def about(seconds: float | None) -> str:
    """An estimate as the lines say it: ``~Ns`` (whole seconds, at least 1); '' for none."""
    if seconds is None or seconds != seconds:
        return ""
    return f"~{max(1, round(seconds))}s"


class Activity:
    """Steps of a command on stderr, when it is a terminal (``enabled`` forces it on or off).

    ``step(text, estimate_s)`` (or calling the object) ends the step before and starts this one;
    ``close()`` (or leaving the ``with`` block) ends the last. ``transient``: no lines left behind,
    the spinner only (for a command whose own output says how long it took)."""

    def __init__(self, console: Console | None = None, *, enabled: bool | None = None, transient: bool = False):
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.transient = transient
        self._progress: Progress | None = None
        self._task = None
        self._text = ""
        self._started = 0.0

    def __enter__(self) -> Activity:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(failed=kind is not None)

    def step(self, text: str, estimate_s: float | None = None) -> None:
        """Start the step ``text``; ``estimate_s``: how long it should take, shown as ``~Ns``."""
        if not self.enabled:
            return
        self._end()
        if self._progress is None:
            # stdout stays the command's own (a CSV, JSON): never redirected into the display
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=self.console, transient=True, redirect_stdout=False)
            self._progress.start()
        guess = about(estimate_s)
        self._text = f"{text} ({guess})" if guess else text
        self._started = time.monotonic()
        self._task = self._progress.add_task(escape(self._text), total=None)

    __call__ = step  # an Activity is the on_step callback of deploy/ and results/

    def detail(self, text: str) -> None:
        """Say more about the running step (e.g. rows done so far) next to its text."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=escape(f"{self._text}: {text}"))

    def _end(self, failed: bool = False) -> None:
        if self._task is None or self._progress is None:
            return
        self._progress.remove_task(self._task)
        self._task = None
        took = time.monotonic() - self._started
        if failed:
            self._progress.console.print(f"{self._text}: stopped after {took:.1f}s", markup=False, highlight=False)
        elif not self.transient:
            self._progress.console.print(f"{self._text}: {took:.1f}s", markup=False, highlight=False)

    def close(self, failed: bool = False) -> None:
        """End the last step and take the spinner away (before the command prints its results)."""
        self._end(failed)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class Counting:
    """A loaded model whose ``predict_batch`` tells ``activity`` the rows predicted so far (``tuner
    predict``: a big file's progress); everything else is the model's own."""

    def __init__(self, model, activity: Activity):
        self._model, self._activity = model, activity
        self._started = time.monotonic()

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def predict_batch(self, chunk, **kwargs):
        result = self._model.predict_batch(chunk, **kwargs)
        done = int(kwargs.get("row_offset") or 0) + len(chunk)
        rate = done / max(time.monotonic() - self._started, 1e-9)
        self._activity.detail(f"{done:,} rows done ({rate:,.0f} rows/s)")
        return result


__all__ = ["Activity", "Counting", "about"]
