"""The `tuner` command line (Typer). User errors become one line and exit code 2."""

from __future__ import annotations

import functools
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import TunerError

app = typer.Typer(
    name="tuner", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Tune and compare machine-learning model families on tabular data.",
)
out = Console(highlight=False)
if not out.is_terminal:  # files and pipes get the whole table, not an 80-column squeeze
    out = Console(highlight=False, width=200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


def _user_errors(fn):
    """Turn TunerError into `Error: ...` on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TunerError as exc:
            err.print(f"[bold red]Error:[/] {exc}", markup=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _quiet_libraries() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL [default: sqlite:///tuner.db].")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name [default: from the data file name].")]


@app.command()
@_user_errors
def run(
    data: Annotated[str, typer.Argument(help="CSV/TSV/Parquet file (optionally .gz) or builtin:NAME.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict.")],
    task: Annotated[str, typer.Option(help="auto, binary, multiclass or regression.")] = "auto",
    metric: Annotated[Optional[str], typer.Option(help="Metric to optimise [default: roc_auc / accuracy / rmse].")] = None,
    models: Annotated[Optional[str], typer.Option(help="Comma-separated families [default: all of the task].")] = None,
    trials: Annotated[Optional[int], typer.Option(help="Trials per family in this invocation.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds for the whole invocation.")] = None,
    cv: Annotated[Optional[int], typer.Option(help="Cross-validation folds [default: 5].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for folds, samplers and models [default: 0].")] = None,
    storage: StorageOpt = None,
    run_name: RunOpt = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Threads a model may use.")] = 1,
) -> None:
    """Cross-validate and tune every model family on DATA; print the leaderboard."""
    from . import leaderboard as lb
    from .config import parse_models, validate_budget
    from .data import prepare, read_table
    from .progress import RunProgress
    from .storage import DEFAULT_STORAGE, default_run_name, open_storage
    from .study import Driver, make_config, start_run

    _quiet_libraries()
    validate_budget(trials, timeout)
    if n_jobs < 1:
        raise TunerError(f"--n-jobs must be at least 1 (got {n_jobs})")
    model_list = parse_models(models)
    ds = prepare(read_table(data), target, task, source=_source(data))
    name = run_name or default_run_name(data)
    make_config(ds, run=name, metric=metric, models=model_list, cv=cv, seed=seed)  # validate before writing
    url = storage or DEFAULT_STORAGE
    store = open_storage(url, create=True)
    config = start_run(store, ds, run=name, metric=metric, models=model_list, cv=cv, seed=seed)

    n_num, n_cat = len(ds.schema.numeric), len(ds.schema.categorical)
    out.print(f"Data: {data}: {len(ds.X)} rows, {ds.X.shape[1]} features ({n_num} numeric, {n_cat} categorical)")
    out.print(f"Task: {ds.task} ({ds.task_reason})")
    for note in ds.notes:
        out.print(f"  note: {note}")
    budget = " and ".join(x for x in (f"{trials} trials per family" if trials else "",
                                       f"{timeout:g}s" if timeout else "") if x) or "20 trials per family"
    out.print(f"Run {config.run!r} in {url}: {', '.join(config.families)}; optimising {config.metric} "
              f"with {config.cv}-fold CV (seed {config.seed}); budget {budget}")

    started = time.monotonic()
    with RunProgress(config.families, trials, timeout, config.metric, console=err) as progress:
        try:
            families = Driver(store, config, ds, n_jobs=n_jobs, progress=progress).run(trials, timeout)
        except KeyboardInterrupt:
            progress.__exit__(None, None, None)
            out.print("\nInterrupted: the current trial is recorded as failed; rerun the same command to continue.")
            out.print(lb.to_rich_table(lb.build(store, config), config))
            raise typer.Exit(130) from None
    done = sum(f.done_now for f in families)
    out.print(f"{done} trial(s) in {time.monotonic() - started:.1f}s")
    for fam in families:
        if fam.gave_up:
            out.print(f"  note: {fam.name} set aside after {fam.failures_in_a_row} failed trials in a row")
    out.print(lb.to_rich_table(lb.build(store, config), config))


def _source(data: str) -> str:
    if data.startswith("builtin:") or "://" in data:
        return data
    return str(Path(data).resolve())


@app.command()
@_user_errors
def leaderboard(
    run_name: RunOpt = None,
    storage: StorageOpt = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write to FILE instead of the terminal.")] = None,
) -> None:
    """Show a run's families ranked by cross-validated score (from the storage alone)."""
    from . import leaderboard as lb
    from .storage import open_storage, require_config

    store = open_storage(storage, create=False)
    config = require_config(store, run_name)
    rows = lb.build(store, config)
    if fmt == Format.table:
        if out_file is not None:
            raise TunerError("--format table prints to the terminal; use --format json|csv|markdown|html with --out")
        out.print(lb.to_rich_table(rows, config))
        return
    text = lb.render(rows, config, fmt.value)
    if out_file is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise TunerError(f"cannot write {out_file}: {exc.strerror}") from None
        err.print(f"wrote {out_file}")


@app.command()
@_user_errors
def runs(storage: StorageOpt = None) -> None:
    """List the runs in the storage with task, metric, families, trials and best score."""
    from rich.table import Table

    from . import leaderboard as lb
    from .storage import list_runs, open_storage

    store = open_storage(storage, create=False)
    configs = list_runs(store)
    if not configs:
        out.print("no runs in this storage yet")
        return
    table = Table(title="runs")
    for col in ("run", "task", "metric", "families", "trials c/p/f", "best", "data", "created"):
        table.add_column(col)
    for config in configs:
        rows = lb.build(store, config)
        totals = [sum(r["trials"][k] for r in rows) for k in ("complete", "pruned", "failed")]
        best = rows[0] if rows and rows[0]["status"] == "ok" else None
        best_text = f"{best['model']} {best['metrics'][config.metric]['mean']:.4f}" if best else "—"
        table.add_row(config.run, config.task, config.metric, ",".join(config.families),
                      "/".join(map(str, totals)), best_text, config.source, config.created_at)
    out.print(table)


@app.command()
@_user_errors
def spaces(task: Annotated[Optional[str], typer.Option(help="binary, multiclass or regression.")] = None) -> None:
    """List the model families and the hyperparameters each one searches."""
    from rich.table import Table

    import search_spaces

    from . import preprocessing

    if task is not None and task not in search_spaces.TASKS:
        raise TunerError(f"unknown task {task!r}; use binary, multiclass or regression")
    for space in search_spaces.available_spaces(task):
        table = Table(title=f"{space.name} — {space.summary} [tasks: {', '.join(space.tasks)}]",
                      title_justify="left", show_header=True)
        table.add_column("hyperparameter")
        table.add_column("range")
        for name, text in space.describe.items():
            table.add_row(name, text)
        out.print(table)
    table = Table(title="preprocessing searched with every family (where it applies)", title_justify="left")
    table.add_column("choice")
    table.add_column("range")
    for name, text in preprocessing.describe(task or "binary").items():
        table.add_row(name, text)
    if task is None:
        for name, text in preprocessing.describe("regression").items():
            table.add_row(name, text) if name == "prep_target" else None
    out.print(table)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
