"""What every command shares: the consoles, the one-line error wrapper, common options, tables
that fit the terminal, and the run choice of commands that take ``--run``."""

from __future__ import annotations

import functools
from typing import Annotated, Optional

import typer
from rich.console import Console

from tuner.errors import TunerError

out = Console(highlight=False)
if not out.is_terminal:  # files and pipes: lines are not wrapped at 80 columns
    out = Console(highlight=False, width=200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def user_errors(fn):
    """Turn TunerError into `Error: ...` on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _said.clear()
        try:
            result = fn(*args, **kwargs)
        except TunerError as exc:
            _said.clear()  # an error stays one line: the run choice is not said
            from rich.markup import escape  # a message may hold brackets: pip install 'tuner[report]'

            err.print(f"[bold red]Error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(exc.exit_code) from None
        say_chosen_run()  # a command that printed nothing says it now, once it worked
        return result

    return wrapper


_said: list[str] = []


def say_chosen_run(*, if_shown: bool = False) -> None:
    """Say on stderr which run the command chose (once), before the output it describes; a command
    that fails before printing anything says only its error (one line). ``if_shown``: only when
    stderr is a terminal (where the steps of a long command are shown: the run is said before them)."""
    if if_shown and not err.is_terminal:
        return
    for line in _said:
        err.print(line, markup=False)
    _said.clear()


def quiet_libraries() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL [default: sqlite:///tuner.db].")]
RunOpt = Annotated[Optional[str], typer.Option(
    "--run", help="Run name [default: the only run in the storage, else the most recent; `tuner runs` lists them].")]
WideOpt = Annotated[bool, typer.Option(
    "--wide", help="Show every column of the table, however wide the terminal (pipes and files always get every column).")]
TrialTimeoutOpt = Annotated[Optional[float], typer.Option(
    "--trial-timeout", help="Stop any trial still running after this many seconds (recorded as failed: timeout); "
                            "trials then run in supervised worker processes, so a trial killed by the system "
                            "(out of memory) is recorded too and the run goes on.")]


def table_width(wide: bool = False) -> int | None:
    """The width a table must fit: the terminal's, or None (every column) for --wide, pipes and files."""
    return out.width if out.is_terminal and not wide else None


def print_fitted(fitted, wide: bool = False) -> None:
    """Print a ``tuner.results.table.Fitted`` built for ``table_width(wide)``: on a terminal as it is;
    for --wide, a pipe or a file at the width its full layout needs (one stable layout)."""
    say_chosen_run()
    if table_width(wide) is not None:
        out.print(fitted.renderable)
        return
    Console(highlight=False, width=max(fitted.width, 80),
            force_terminal=True if out.is_terminal else None).print(fitted.renderable, crop=False)


def choose_run(store, run_name: str | None, url: str | None, data: str | None = None):
    """The run of a command taking --run, the same way for every command; says which when it chose."""
    from tuner.storage.runs import DEFAULT_STORAGE
    from tuner.storage.runs import choose_run as choose

    config, why = choose(store, run_name, data=data)
    if why:  # said on stderr when the command succeeds (stdout stays the command's output)
        _said.append(f"run {config.run!r} ({why}; in {url or DEFAULT_STORAGE})")
    return config


__all__ = ["out", "err", "user_errors", "quiet_libraries", "StorageOpt", "RunOpt", "WideOpt", "TrialTimeoutOpt",
           "table_width", "print_fitted", "choose_run", "say_chosen_run"]


MlflowOpt = Annotated[Optional[str], typer.Option(
    "--mlflow", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
    help="MLflow tracking URI to log to (file:, http:, ...; needs the mlflow extra).")]
