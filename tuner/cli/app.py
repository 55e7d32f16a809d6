"""The `tuner` command line (Typer). User errors become one line and exit code 2.

Each command imports what it uses inside its function, so ``tuner --help`` and a command that
fails on its options do not load scikit-learn, Optuna's storages or the model libraries.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tuner.cli.common import (
    MlflowOpt,
    RunOpt,
    StorageOpt,
    TrialTimeoutOpt,
    WideOpt,
    choose_run,
    err,
    out,
    print_fitted,
    say_chosen_run,
    table_width,
    user_errors,
)
from tuner.cli.common import quiet_libraries as _quiet_libraries
from tuner.cli.importance import importance as _importance
from tuner.cli.run import run as _run
from tuner.errors import TunerError
from tuner.execution.cores import refit_threads  # light: os and dataclasses

app = typer.Typer(
    name="tuner", add_completion=True, pretty_exceptions_enable=False,  # tuner --install-completion
    rich_markup_mode=None,  # help texts say "[default: ...]": not markup
    help="Tune and compare machine-learning model families on tabular data.",
)
_user_errors = user_errors
app.command(name="run")(_run)
app.command(name="importance")(_importance)

SHORT_HELP = """\
tuner: tune and compare machine-learning model families on tabular data.

Quick start (a built-in demo; any CSV/TSV/Parquet file works the same way):
  tuner run builtin:breast_cancer --target target --trials 5

Then: tuner leaderboard | tuner export --out model | tuner predict model DATA | tuner report --out report.html
Commands: run, leaderboard, runs, export, predict, serve, report, importance, worker, spaces, dashboard
More: tuner --help (every command), tuner COMMAND --help (its options)."""


@app.callback(invoke_without_command=True)
def _main(ctx: typer.Context) -> None:
    """Tune and compare machine-learning model families on tabular data."""
    if ctx.invoked_subcommand is None:  # `tuner` alone: the short help, not the full listing
        out.print(SHORT_HELP, markup=False, highlight=False)
        raise typer.Exit(0)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


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
    wide: WideOpt = False,
) -> None:
    """Show a run's families ranked by cross-validated score (from the storage alone)."""
    from tuner.evaluation.metrics import check_metric
    from tuner.results import leaderboard as lb
    from tuner.results import top_trials as tt
    from tuner.storage.runs import open_storage
    from tuner.workflow.derived import ensure_scores

    if fmt == Format.table and out_file is not None:
        raise TunerError("--format table prints to the terminal; use --format json|csv|markdown|html with --out")
    if top_trials is not None and top_trials < 1:
        raise TunerError(f"--top-trials must be at least 1 (got {top_trials})")
    store = open_storage(storage, create=False)
    config = choose_run(store, run_name, storage)
    metric = check_metric(metric or config.metric, config.task).name
    if top_trials is not None:
        trials_rows = tt.build(store, config, metric, top_trials)
        if fmt == Format.table:
            say_chosen_run()
            out.print(tt.to_rich_table(trials_rows, config, metric))
            return
        text = tt.render(trials_rows, config, fmt.value, metric)
    else:
        from tuner.cli.activity import Activity

        say_chosen_run(if_shown=True)
        with Activity(err, transient=True) as step:  # a spinner on a terminal while new best trials are scored
            step("bringing the run's ensemble and held-out scores up to date", None)
            note = ensure_scores(store, config, metric)  # a best trial new since the run: score it once
        if note:
            say_chosen_run()
            err.print(f"note: {note}")
        rows = lb.build(store, config, metric)
        if fmt == Format.table:
            hint = "--wide" if wide else _leaderboard_hint(storage, config.run)
            print_fitted(lb.fitted_table(rows, config, metric, width=table_width(wide), wide_hint=hint), wide)
            return
        text = lb.render(rows, config, fmt.value, metric)
    say_chosen_run()
    if out_file is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise TunerError(f"cannot write {out_file}: {exc.strerror}") from None
        err.print(f"wrote {out_file}")


def _leaderboard_hint(storage: Optional[str], run: str) -> str:
    import shlex

    where = f" --storage {shlex.quote(storage)}" if storage else ""
    return f"`tuner leaderboard{where} --run {shlex.quote(run)} --wide`"


@app.command()
@_user_errors
def runs(storage: StorageOpt = None, wide: WideOpt = False) -> None:
    """List the runs in the storage with task, metric, families, trials and best score."""
    from tuner.results import leaderboard as lb
    from tuner.results.table import Column, fit
    from tuner.storage.runs import list_runs, open_storage

    store = open_storage(storage, create=False)
    configs = list_runs(store)
    if not configs:
        out.print("no runs in this storage yet")
        return
    cells: dict[str, list[str]] = {k: [] for k in ("run", "task", "metric", "best", "trials c/p/f", "families",
                                                   "created", "data")}
    for config in configs:
        rows = lb.build(store, config)
        totals = [sum(r["trials"][k] for r in rows) for k in ("complete", "pruned", "failed")]
        best = rows[0] if rows and rows[0]["status"] == "ok" else None
        for key, value in (("run", config.run), ("task", config.task), ("metric", config.metric),
                           ("best", f"{best['model']} {best['metrics'][config.metric]['mean']:.4f}" if best else "—"),
                           ("trials c/p/f", "/".join(map(str, totals))), ("families", ",".join(config.families)),
                           ("created", config.created_at), ("data", config.source)):
            cells[key].append(value)
    kept = {"run", "task", "metric", "best", "trials c/p/f"}
    columns = [Column(k, v, kept=k in kept, justify="right" if k == "trials c/p/f" else "left",
                      short_header="trials" if k == "trials c/p/f" else None) for k, v in cells.items()]
    where = f" --storage {storage}" if storage else ""
    print_fitted(fit(columns, table_width(wide), title=f"runs in {storage or 'sqlite:///tuner.db'}, oldest first",
                     notes=["trials c/p/f: complete / pruned / failed, all families."],
                     wide_hint=f"`tuner runs{where} --wide`"), wide)


@app.command()
@_user_errors
def spaces(task: Annotated[Optional[str], typer.Option(help="binary, multiclass or regression.")] = None,
           space_path: Annotated[Optional[Path], typer.Option(
               "--space", help="A --space TOML file: show what each family it names searches with it.")] = None) -> None:
    """List the model families and the hyperparameters each one searches."""
    from rich.table import Table

    import search_spaces
    from tuner.data import preprocessing

    if task is not None and task not in search_spaces.TASKS:
        raise TunerError(f"unknown task {task!r}; use binary, multiclass or regression")
    if space_path is not None:
        from tuner.cli.space_table import print_space_file

        print_space_file(space_path, task)
        return
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
    from tuner.cli.activity import Activity
    from tuner.results.html_report import write_report
    from tuner.storage.runs import open_storage

    _quiet_libraries()
    store = open_storage(storage, create=False)
    config = choose_run(store, run_name, storage)
    from tuner.workflow.derived import ensure_scores

    threads = refit_threads(n_jobs)
    say_chosen_run(if_shown=True)  # before the steps shown below
    with Activity(err) as step:  # on a terminal only: what it is doing, with estimates
        step("bringing the run's ensemble and held-out scores up to date", None)
        note = ensure_scores(store, config, n_jobs=threads)
        path = write_report(store, config, out_file, n_jobs=threads, note=note, on_step=step)
    say_chosen_run()
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


def _load_model(model_dir: Path, trust_pickle: bool = False, trust_modules: list[str] | None = None):
    """Load an artifact, printing version-mismatch warnings as one line each."""
    import warnings

    from rich.markup import escape

    from tuner.deploy.artifact import VersionWarning, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VersionWarning)
        model = load(model_dir, trust_pickle=trust_pickle, trust_modules=trust_modules or ())
    for w in caught:
        if issubclass(w.category, VersionWarning):
            err.print(f"[yellow]warning:[/] {escape(str(w.message))}", markup=True)
    return model


TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickled model (runs code when loaded): only for files from a source you trust.")]
TrustModuleOpt = Annotated[Optional[list[str]], typer.Option(
    "--trust-module", help="Allow the classes of this package in the model file (a plug-in family's; repeatable).")]


@app.command()
@_user_errors
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the model artifact to.")],
    run_name: RunOpt = None,
    storage: StorageOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Family to export [default: the run's winner].")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also write model.onnx, verified against the native model (needs the onnx extra).")] = False,
    n_jobs: Annotated[Optional[int], typer.Option("--n-jobs", help="Threads the refit may use [default: every core].")] = None,
    importance: Annotated[bool, typer.Option(
        "--importance/--no-importance", help="Also record the columns' permutation importances in the card "
                                             "(refits on up to 3 CV folds, or on the --test-size split; can take "
                                             "minutes: `tuner importance` computes them on their own).")] = False,
    trust_module: TrustModuleOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Refit the winner (or --model's best) on all training rows and write a model folder."""
    from tuner.cli.activity import Activity
    from tuner.deploy.export import export_model
    from tuner.storage.runs import open_storage

    _quiet_libraries()
    if mlflow:
        from tuner.results.tracking import check

        check(mlflow)  # before the refit
    if run_name is None:  # the same choice as every command taking --run, said the same way
        run_name = choose_run(open_storage(storage, create=False), None, storage).run
    say_chosen_run(if_shown=True)  # before the steps shown below
    with Activity(err) as step:  # on a terminal only: the refit, importances, ONNX check, with estimates
        result = export_model(out_dir, run=run_name, storage=storage, family=model, onnx=onnx, on_step=step,
                              n_jobs=refit_threads(n_jobs), importance=importance, trust_modules=trust_module or ())
    say_chosen_run()
    card = result.card
    row = card["leaderboard_row"]
    m = row["metrics"][card["metric"]]
    how = (f"the model the run fitted on its {card['data']['rows_refit']} training rows ({result.fit_seconds:.1f}s), "
           "no refit" if result.kept else f"refit on {card['data']['rows_refit']} rows in {result.fit_seconds:.1f}s")
    out.print(f"Exported {card['family']} (rank {row.get('rank')}, {card['metric']} {m['mean']:.4f} ± {m['std'] or 0:.4f}) "
              f"from run {card['run']!r}: {how}", soft_wrap=True)
    final = card.get("final_fit") or {}
    if result.kept and final.get("chosen") not in (None, "the winner"):
        out.print(f"  note: not the winner: {final['chosen']}; `tuner export --model {final['winner']}` refits it",
                  soft_wrap=True, markup=False)
    if result.note and not result.kept:
        out.print(f"  note: refit because {result.note}", soft_wrap=True, markup=False)
    from tuner.deploy.export import decision_line

    labels = decision_line(card.get("decision"))
    if labels:
        out.print(f"  {labels}", soft_wrap=True, markup=False)
    pipeline = card["pipeline"]
    members = pipeline.get("members") or [pipeline]  # an ensemble: every member's own files
    if pipeline["format"] == "ensemble":
        weights = ", ".join(f"{m['model']} #{m['trial_number']} {m['weight']:.2f}" for m in card["params"]["members"])
        fmt = f"ensemble of {len(members)}: {weights}"
    else:
        native = pipeline.get("native_model")
        fmt = pipeline["format"] + (f" + {native['file']} ({native['format']})" if native else "")
    out.print(f"  {out_dir}/: {', '.join(card['files'])}, model_card.json (model format: {fmt})", markup=False)
    for member in members:
        if member["format"] != "skops":
            out.print(f"  note: {member.get('why_not_skops')}; the pickle must be loaded with --trust-pickle", markup=False)
    for name, ref in (card.get("plugins") or {}).items():
        out.print(f"  plug-in family {name} ({ref}): loading this model needs its package installed"
                  + (f" and --trust-module {ref.split('.')[0].split(':')[0]}" if any(
                      m.get("trusted_modules") for m in members) else ""), markup=False)
    found = card.get("feature_importance")
    if found and "error" not in found:
        top = ", ".join(f"{c['column']} {c['mean']:+.3f}" for c in found["columns"][:5])
        out.print(f"  importance ({found['metric']} worse when shuffled): {top}"
                  f"{' …' if len(found['columns']) > 5 else ''}; all: tuner importance {out_dir}", markup=False)
    elif found:
        out.print(f"  importance: not computed ({found['error']})", markup=False)
    else:
        out.print(f"  importance: `tuner importance --run {card['run']}` (or `tuner export --importance`)",
                  markup=False, soft_wrap=True)
    if mlflow:
        from tuner.results.tracking import log_model
        from tuner.storage.runs import require_config

        config = require_config(open_storage(storage, create=False), card["run"])
        out.print(f"  MLflow: logged the folder as model/ of run {log_model(mlflow, config, Path(out_dir))} "
                  f"in {mlflow}", soft_wrap=True, markup=False)
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
    threshold: Annotated[Optional[float], typer.Option(
        "--threshold", help="Binary models: the probability of the positive class from which it is the label "
                            "[default: the model card's decision threshold].")] = None,
    trust_pickle: TrustPickleOpt = False,
    trust_module: TrustModuleOpt = None,
) -> None:
    """Predict every row of DATA; CSV with `prediction` (+ probabilities), rows in input order."""
    from tuner.cli.activity import Activity, Counting
    from tuner.deploy.predict import predict_file

    model = _load_model(model_dir, trust_pickle, trust_module)
    if threshold is not None:
        model.check_threshold(threshold)  # before any row is read
    # a spinner with the rows done, on a terminal, unless the CSV itself goes to that terminal
    with Activity(err, transient=True, enabled=err.is_terminal and (out_file is not None or not out.is_terminal)) as step:
        step(f"predicting the rows of {data} ({chunk_rows} at a time)", None)
        stats = predict_file(Counting(model, step), data, out_file, proba=proba, chunk_rows=chunk_rows,
                             threshold=threshold, on_note=lambda text: err.print(f"note: {text}", markup=False))
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
    trust_module: TrustModuleOpt = None,
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
               allow_unauthenticated=allow_unauthenticated, trust_pickle=trust_pickle, trust_modules=trust_module or (),
               on_start=announce)


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
