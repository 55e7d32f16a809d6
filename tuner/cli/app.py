"""The `tuner` command line (Typer). User errors become one line and exit code 2.

Each command imports what it uses inside its function, so ``tuner --help`` and a command that
fails on its options do not load scikit-learn, Optuna's storages or the model libraries.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from tuner.errors import TunerError
from tuner.execution.cores import refit_threads  # light: os and dataclasses

app = typer.Typer(
    name="tuner", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]": not markup
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
            from rich.markup import escape  # a message may hold brackets: pip install 'tuner[report]'

            err.print(f"[bold red]Error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _quiet_libraries() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL [default: sqlite:///tuner.db].")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name [default: from the data file name].")]
TrialTimeoutOpt = Annotated[Optional[float], typer.Option(
    "--trial-timeout", help="Stop any trial still running after this many seconds (recorded as failed: timeout); "
                            "trials then run in supervised worker processes, so a trial killed by the system "
                            "(out of memory) is recorded too and the run goes on.")]


@app.command()
@_user_errors
def run(
    data: Annotated[str, typer.Argument(help="CSV/TSV/Parquet file (optionally .gz) or builtin:NAME.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict.")],
    task: Annotated[str, typer.Option(help="auto, binary, multiclass or regression.")] = "auto",
    pos_label: Annotated[Optional[str], typer.Option(
        "--pos-label", help="Binary targets: the class precision / recall / f1 / roc_auc score as positive "
                            "[default: the second of the sorted labels].")] = None,
    metric: Annotated[Optional[str], typer.Option(help="Metric to optimise [default: roc_auc / accuracy / rmse].")] = None,
    models: Annotated[Optional[str], typer.Option(help="Comma-separated families [default: all of the task].")] = None,
    trials: Annotated[Optional[int], typer.Option(
        help="Complete trials per family to add to the run's budget (default 20).")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        help="Seconds for the whole invocation (with --create-only: from when the first worker joins).")] = None,
    cv: Annotated[Optional[int], typer.Option(help="Cross-validation folds [default: 5; 3 above 10,000 rows].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for folds, samplers and models [default: 0].")] = None,
    storage: StorageOpt = None,
    run_name: RunOpt = None,
    n_jobs: Annotated[Optional[int], typer.Option(
        "--n-jobs", help="Worker processes sharing the run, each with cores/J model threads (1: this process, 1 thread) "
                         "[default: every core; env TUNER_N_JOBS].")] = None,
    create_only: Annotated[bool, typer.Option(
        "--create-only", help="Record the run and its budget, then exit: `tuner worker` processes do the trials.")] = False,
    cv_repeats: Annotated[Optional[int], typer.Option(
        "--cv-repeats", help="Repeat the K-fold CV R times with new shuffles (same folds for every family) "
                            "[default: 1; with --timeout alone and no --cv: 3 up to 1,000 rows, 2 up to 2,500].")] = None,
    test_size: Annotated[Optional[float], typer.Option(
        "--test-size", help="Fraction of rows held out before tuning (stratified, seeded) and scored once after [default: 0, none].")] = None,
    trial_timeout: TrialTimeoutOpt = None,
) -> None:
    """Cross-validate and tune every model family on DATA; print the leaderboard."""
    invoked_at = time.time()  # --timeout covers the whole invocation, data loading included
    from tuner.cli.progress import RunProgress
    from tuner.config import parse_models, validate_budget
    from tuner.data.dataset import check_test_size, prepare, read_table
    from tuner.evaluation.cross_validation import rare_class_note
    from tuner.execution import cores
    from tuner.results import holdout
    from tuner.results import leaderboard as lb
    from tuner.search.driver import Driver, make_config, start_run
    from tuner.storage.runs import DEFAULT_STORAGE, default_run_name, open_storage

    _quiet_libraries()
    validate_budget(trials, timeout, trial_timeout)
    cores.requested(n_jobs)  # a bad --n-jobs / TUNER_N_JOBS fails before anything is written
    model_list = parse_models(models)
    if cv_repeats is not None and cv_repeats < 1:
        raise TunerError(f"--cv-repeats must be at least 1 (got {cv_repeats})")
    check_test_size(test_size)
    full = prepare(read_table(data), target, task, source=_source(data), pos_label=pos_label)
    name = run_name or default_run_name(data)
    make_config(full, run=name, metric=metric, models=model_list, cv=cv, seed=seed)  # validate before writing
    url = storage or DEFAULT_STORAGE
    store = open_storage(url, create=True)
    # Tuning sees the training part only; the held-out rows are scored once, after tuning.
    ds, test_ds, fraction = holdout.resolve_split(store, full, run=name, test_size=test_size, seed=seed)
    config = start_run(store, ds, run=name, metric=metric, models=model_list, cv=cv, seed=seed,
                       cv_repeats=cv_repeats, test_size=fraction, clocked=timeout is not None and trials is None)

    n_num, n_cat, n_date = len(ds.schema.numeric), len(ds.schema.encoded), len(ds.schema.datetime)
    dates = f", {n_date} date/time" if n_date else ""
    out.print(f"Data: {data}: {len(ds.X)} rows, {ds.X.shape[1]} features ({n_num} numeric, {n_cat} categorical{dates})")
    out.print(f"Task: {ds.task} ({ds.task_reason})")
    for note in ds.notes:
        out.print(f"  note: {note}")
    rare = rare_class_note(ds.y, config.task, config.cv, config.classes)
    if rare:
        out.print(f"  note: {rare}")
    budget = " and ".join(x for x in (f"{trials} trials per family" if trials else "",
                                       f"{timeout:g}s" if timeout else "") if x) or "20 trials per family"
    reps = f" × {config.cv_repeats} repeats" if config.cv_repeats > 1 else ""
    out.print(f"Run {config.run!r} in {url}: {', '.join(config.families)}; optimising {config.metric} "
              f"with {config.cv}-fold CV{reps} (seed {config.seed}); budget {budget}")

    if create_only:
        _create_only(store, url, config, ds, trials, timeout)
        return

    split = cores.plan(n_jobs, clocked=timeout is not None and trials is None, n_families=len(config.families))
    out.print(f"Using {split.describe()}")
    started = time.monotonic()
    from tuner.execution.worker import Interrupted, install_sigterm_handler

    previous_sigterm = install_sigterm_handler()  # SIGTERM (a scheduler stopping the job) like Ctrl-C
    with RunProgress(config.families, trials, timeout, config.metric, console=err) as progress:
        try:
            families = Driver(store, config, ds, n_jobs=split.workers, threads=split.threads, progress=progress,
                              trial_timeout=trial_timeout).run(trials, timeout, started_at=invoked_at)
        except KeyboardInterrupt as exc:
            progress.__exit__(None, None, None)
            from tuner.execution.worker import standing_text

            out.print("\nInterrupted: the current trial is recorded as failed; rerun the same command to continue.")
            out.print(f"Run {config.run!r} stands at: {standing_text(store, config)} complete")
            out.print(lb.to_rich_table(lb.build(store, config), config))
            raise typer.Exit(143 if isinstance(exc, Interrupted) else 130) from None
        finally:
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)
    done = sum(f.done_now for f in families)
    out.print(f"{done} trial(s) in {time.monotonic() - started:.1f}s")
    for fam in families:
        if fam.gave_up:
            out.print(f"  note: {fam.name} set aside: {fam.aside_reason()}")
    if test_ds is not None:  # refit each family's best on the training part, score it on the test part once
        holdout.score_best(store, config, ds, test_ds, n_jobs=split.cores)
    out.print(lb.to_rich_table(lb.build(store, config, studies={f.name: f.study for f in families}), config))


def _create_only(store, url: str, config, ds, trials: Optional[int], timeout: Optional[float]) -> None:
    """`tuner run --create-only`: the run and its budget go to the storage; workers do the rest."""
    from tuner.execution import budget as run_budget
    from tuner.search.driver import DEFAULT_TRIALS, Driver

    if config.source in ("", "<DataFrame>"):
        raise TunerError("--create-only needs DATA that workers can read again: a file path or URL, or builtin:NAME")
    if trials is None and timeout is None:
        trials = DEFAULT_TRIALS
    families = Driver(store, config, ds).open_families()
    spent = run_budget.add(store, config, {f.name: f.study for f in families}, trials=trials, timeout=timeout,
                           start_clock=False)
    out.print(f"Created run {config.run!r}: budget {spent.describe()}; data at {config.source}")
    if url.startswith("sqlite:"):
        out.print("  note: a SQLite storage is shared by processes on this machine only; "
                  "use --storage postgresql://HOST/DB for workers on other machines")
    out.print("Start workers (any number, on any machine that can reach the storage and the data):")
    out.print(f"  tuner worker --storage {url} --run {config.run}", soft_wrap=True)
    out.print(f"Watch: tuner leaderboard --storage {url} --run {config.run}", soft_wrap=True)


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
    metric: Annotated[Optional[str], typer.Option(
        help="Rank by another metric of the task (each family's best trial by that metric) [default: the run's].")] = None,
    top_trials: Annotated[Optional[int], typer.Option(
        "--top-trials", help="List the best K completed trials across all families instead.")] = None,
) -> None:
    """Show a run's families ranked by cross-validated score (from the storage alone)."""
    from tuner.evaluation.metrics import check_metric
    from tuner.results import holdout
    from tuner.results import leaderboard as lb
    from tuner.results import top_trials as tt
    from tuner.storage.runs import open_storage, require_config

    if fmt == Format.table and out_file is not None:
        raise TunerError("--format table prints to the terminal; use --format json|csv|markdown|html with --out")
    if top_trials is not None and top_trials < 1:
        raise TunerError(f"--top-trials must be at least 1 (got {top_trials})")
    store = open_storage(storage, create=False)
    config = require_config(store, run_name)
    metric = check_metric(metric or config.metric, config.task).name
    if top_trials is not None:
        trials_rows = tt.build(store, config, metric, top_trials)
        if fmt == Format.table:
            out.print(tt.to_rich_table(trials_rows, config, metric))
            return
        text = tt.render(trials_rows, config, fmt.value, metric)
    else:
        note = holdout.ensure_scores(store, config, metric)  # a best trial new since the run: score it once
        if note:
            err.print(f"note: {note}")
        rows = lb.build(store, config, metric)
        if fmt == Format.table:
            out.print(lb.to_rich_table(rows, config, metric))
            return
        text = lb.render(rows, config, fmt.value, metric)
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

    from tuner.results import leaderboard as lb
    from tuner.storage.runs import list_runs, open_storage

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

    from tuner.data import preprocessing

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
    if task is None:  # the target transforms exist for regression only
        for name, text in preprocessing.describe("regression").items():
            if name == "prep_target":
                table.add_row(name, text)
    out.print(table)


@app.command()
@_user_errors
def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    run_name: RunOpt = None,
    storage: StorageOpt = None,
    n_jobs: Annotated[Optional[int], typer.Option(
        "--n-jobs", help="Threads a model may use for the winner's refit [default: every core].")] = None,
) -> None:
    """Write a self-contained HTML report: leaderboard, fold scores, optimisation history, importances, winner's curves."""
    from tuner.results.html_report import write_report
    from tuner.storage.runs import open_storage, require_config

    _quiet_libraries()
    store = open_storage(storage, create=False)
    config = require_config(store, run_name)
    path = write_report(store, config, out_file, n_jobs=refit_threads(n_jobs))
    err.print(f"wrote {path} (self-contained; open it in any browser, no network needed)")


@app.command()
@_user_errors
def dashboard(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Start optuna-dashboard (the live Optuna web UI) on the run's storage (needs the 'dashboard' extra)."""
    from tuner.results.dashboard import serve

    _quiet_libraries()

    def announce(line: str) -> None:
        out.print(line, soft_wrap=True)
        sys.stdout.flush()  # the address must show before the server blocks, pipes included

    serve(storage, host=host, port=port, announce=announce)


def _load_model(model_dir: Path, trust_pickle: bool = False):
    """Load an artifact, printing version-mismatch warnings as one line each."""
    import warnings

    from rich.markup import escape

    from tuner.deploy.artifact import VersionWarning, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VersionWarning)
        model = load(model_dir, trust_pickle=trust_pickle)
    for w in caught:
        if issubclass(w.category, VersionWarning):
            err.print(f"[yellow]warning:[/] {escape(str(w.message))}", markup=True)
    return model


TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickled model (runs code when loaded): only for files from a source you trust.")]


@app.command()
@_user_errors
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the model artifact to.")],
    run_name: RunOpt = None,
    storage: StorageOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Family to export [default: the run's winner].")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also write model.onnx, verified against the native model (needs the onnx extra).")] = False,
    n_jobs: Annotated[Optional[int], typer.Option("--n-jobs", help="Threads the refit may use [default: every core].")] = None,
) -> None:
    """Refit the winner (or --model's best) on all training rows and write a model folder."""
    from tuner.deploy.export import export_model

    _quiet_libraries()
    result = export_model(out_dir, run=run_name, storage=storage, family=model, onnx=onnx,
                          n_jobs=refit_threads(n_jobs))
    card = result.card
    row = card["leaderboard_row"]
    m = row["metrics"][card["metric"]]
    out.print(f"Exported {card['family']} (rank {row.get('rank')}, {card['metric']} {m['mean']:.4f} ± {m['std'] or 0:.4f}) "
              f"from run {card['run']!r}, refit on {card['data']['rows_refit']} rows in {result.fit_seconds:.1f}s")
    pipeline = card["pipeline"]
    native = pipeline.get("native_model")
    fmt = pipeline["format"] + (f" + {native['file']} ({native['format']})" if native else "")
    out.print(f"  {out_dir}/: {', '.join(card['files'])}, model_card.json (model format: {fmt})", markup=False)
    if pipeline["format"] != "skops":
        out.print(f"  note: {pipeline.get('why_not_skops')}; the pickle must be loaded with --trust-pickle", markup=False)
    onnx_info = card.get("onnx")
    if onnx_info:
        if onnx_info["status"] == "verified":
            v = onnx_info["verification"]
            diff = v.get("max_abs_proba_diff", v.get("max_abs_diff"))
            out.print(f"  ONNX: model.onnx verified on {v['rows']} rows (max |difference| {diff:.2g}; {v['tolerance']})",
                      markup=False)
        else:
            out.print(f"  ONNX: {onnx_info['status']}: {onnx_info['reason']} (the native model is complete)", markup=False)


@app.command()
@_user_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `tuner export`.")],
    data: Annotated[str, typer.Argument(help="CSV/TSV/Parquet file (optionally .gz) or builtin:NAME.")],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="CSV to write [default: standard output].")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one proba_<class> column per class.")] = False,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows read and predicted at a time.")] = 50_000,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Predict every row of DATA; CSV with `prediction` (+ probabilities), rows in input order."""
    from tuner.deploy.predict import predict_file

    model = _load_model(model_dir, trust_pickle)
    stats = predict_file(model, data, out_file, proba=proba, chunk_rows=chunk_rows,
                         on_note=lambda text: err.print(f"note: {text}", markup=False))
    if out_file is not None:
        err.print(f"wrote {stats.rows} prediction(s) to {out_file} in {stats.seconds:.2f}s")


@app.command()
@_user_errors
def serve(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by `tuner export`.")],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[Optional[str], typer.Option(envvar="TUNER_SERVE_TOKEN", show_envvar=True,
                                                 help="Require `Authorization: Bearer TOKEN` on /model and /predict.")] = None,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body accepted (413 beyond).")] = 10 * 1024 * 1024,
    allow_unauthenticated: Annotated[bool, typer.Option("--allow-unauthenticated", help="Serve a non-loopback address without a token.")] = False,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Serve the model over HTTP: GET /health, GET /model, POST /predict, /openapi.json (needs the serve extra)."""
    from tuner.deploy.serve import serve as run_server

    def announce(model, token_in_use) -> None:
        for note in model.version_notes:
            err.print(f"warning: exported with {note}", markup=False)
        auth = "bearer token required" if token_in_use else "no token"
        out.print(f"Serving {model.family} ({model.task}, target {model.card['target']!r}) on http://{host}:{port} "
                  f"({auth}; body limit {max_body_bytes} bytes); POST /predict, docs at /docs", soft_wrap=True)
        sys.stdout.flush()

    run_server(model_dir, host=host, port=port, token=token, max_body_bytes=max_body_bytes,
               allow_unauthenticated=allow_unauthenticated, trust_pickle=trust_pickle, on_start=announce)


@app.command()
@_user_errors
def worker(
    run_name: Annotated[str, typer.Option("--run", help="The run to join (created by `tuner run ... --create-only`).")],
    storage: StorageOpt = None,
    timeout: Annotated[Optional[float], typer.Option(help="Start no trial after this many seconds (this worker only).")] = None,
    trials: Annotated[Optional[int], typer.Option(help="Run at most this many trials, then exit (this worker only).")] = None,
    n_jobs: Annotated[Optional[int], typer.Option(
        "--n-jobs", help="Worker processes on this machine; each model gets cores/J threads "
                         "[default: every core; env TUNER_N_JOBS].")] = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", help="Read the run's data here instead of its recorded location (must be the same data).")] = None,
    trial_timeout: TrialTimeoutOpt = None,
) -> None:
    """Join a run: read its configuration and data, run trials until its budget is spent (exit 0)."""
    from tuner.cli.worker import join

    _quiet_libraries()
    code = join(run_name=run_name, storage=storage, timeout=timeout, trials=trials, n_jobs=n_jobs, data=data,
                out=out, err=err, trial_timeout=trial_timeout)
    if code:
        raise typer.Exit(code)


def main() -> None:  # console-script entry point
    from tuner.execution.fit_watchdog import exit_now_if_fits_abandoned

    try:
        app()  # Click's standalone mode: always ends in SystemExit with the command's status
    except SystemExit as exc:  # that status is kept when a given-up fit forces a quick exit
        exit_now_if_fits_abandoned(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
        raise


if __name__ == "__main__":
    main()
