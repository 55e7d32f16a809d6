"""`tuner run`: read the data, create or continue the run, say what this invocation will do,
tune, and print the leaderboard and (on a terminal, or with --next-steps) the commands that come next."""

from __future__ import annotations

import shlex
import signal
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tuner.cli.common import (
    MlflowOpt,
    RunOpt,
    StorageOpt,
    TrialTimeoutOpt,
    WideOpt,
    err,
    out,
    print_fitted,
    quiet_libraries,
    table_width,
    user_errors,
)
from tuner.errors import TunerError

NEXT_STEPS_ENV = "TUNER_NEXT_STEPS"


@user_errors
def run(
    data: Annotated[str, typer.Argument(help="CSV/TSV/Parquet file (optionally .gz) or builtin:NAME.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict.")],
    task: Annotated[str, typer.Option(help="auto, binary, multiclass or regression.")] = "auto",
    pos_label: Annotated[Optional[str], typer.Option(
        "--pos-label", help="Binary targets: the class precision / recall / f1 / roc_auc score as positive "
                            "[default: the second of the sorted labels].")] = None,
    metric: Annotated[Optional[str], typer.Option(
        help="Metric to optimise: accuracy, f1, mcc, pr_auc, rmse, ... (docs/reference.md), NAME@VALUE "
             "(f_beta@2, top_k_accuracy@5) or your own package.module:function [default: roc_auc / accuracy / rmse]."
    )] = None,
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
    groups: Annotated[Optional[str], typer.Option(
        "--groups", help="Column naming the group of each row (patient, customer, store): folds and --test-size "
                         "keep each group on one side; not a feature.")] = None,
    time_column: Annotated[Optional[str], typer.Option(
        "--time-column", help="Column of dates or numbers that orders the rows: folds go forward in time "
                              "(expanding window) and --test-size takes the latest rows; not a feature.")] = None,
    gap: Annotated[Optional[int], typer.Option(
        "--gap", help="With --time-column: rows left out between each fold's past and its future [default: 0].")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Column of row weights (numbers ≥ 0): used in every fit and every metric, the final "
                          "refit included; not a feature.")] = None,
    space: Annotated[Optional[Path], typer.Option(
        "--space", help="TOML file narrowing, fixing or restricting what each family searches "
                        "(`tuner spaces --space FILE` shows the result); stored with the run.")] = None,
    early_stop: Annotated[Optional[bool], typer.Option(
        "--early-stop/--whole-clock", help="With --timeout alone: end the trials once the leaderboard has stopped "
                                           "moving, and say why / use the whole clock [default: --whole-clock].")] = None,
    threshold_metric: Annotated[Optional[str], typer.Option(
        "--threshold-metric", help="Binary tasks: the label metric the decision threshold is chosen for "
                                   "[default: the run's metric when it scores labels, else accuracy].")] = None,
    trial_timeout: TrialTimeoutOpt = None,
    mlflow: MlflowOpt = None,
    wide: WideOpt = False,
    next_steps: Annotated[Optional[bool], typer.Option(
        "--next-steps/--no-next-steps", envvar=NEXT_STEPS_ENV, show_envvar=True,
        help="Print the commands to export, report, predict and get the leaderboard as JSON at the end "
             "[default: on a terminal only].")] = None,
) -> None:
    """Cross-validate and tune every model family on DATA; print the leaderboard (and, on a terminal, what next)."""
    invoked_at = time.time()  # --timeout covers the whole invocation, data loading included
    from tuner.cli.progress import RunProgress
    from tuner.config import parse_models, validate_budget
    from tuner.data.dataset import check_test_size, prepare, read_table
    from tuner.evaluation.cross_validation import rare_class_note
    from tuner.execution import cores
    from tuner.execution.worker import standing
    from tuner.results import leaderboard as lb
    from tuner.storage.runs import DEFAULT_STORAGE, default_run_name
    from tuner.workflow.run import TuningRun

    quiet_libraries()
    validate_budget(trials, timeout, trial_timeout)
    if mlflow:
        from tuner.results.tracking import check

        check(mlflow)  # before anything is written
    cores.requested(n_jobs)  # a bad --n-jobs / TUNER_N_JOBS fails before anything is written
    model_list = parse_models(models)
    if cv_repeats is not None and cv_repeats < 1:
        raise TunerError(f"--cv-repeats must be at least 1 (got {cv_repeats})")
    check_test_size(test_size)
    full = prepare(read_table(data), target, task, source=_source(data), pos_label=pos_label, groups=groups,
                   time_column=time_column, weights=weights)
    url = storage or DEFAULT_STORAGE
    # Tuning sees the training part only; the held-out rows are scored once, after tuning.
    the_run = TuningRun.begin(full, url=url, run=run_name or default_run_name(data), metric=metric,
                              models=model_list, cv=cv, seed=seed, cv_repeats=cv_repeats, test_size=test_size,
                              gap=gap, space=space, trials=trials, timeout=timeout, n_jobs=n_jobs,
                              started_at=invoked_at, early_stop=early_stop, threshold_metric=threshold_metric)
    store, config, ds, existed = the_run.store, the_run.config, the_run.ds, the_run.existed

    n_num, n_cat, n_date = len(ds.schema.numeric), len(ds.schema.encoded), len(ds.schema.datetime)
    n_text = len(ds.schema.text)
    dates = (f", {n_text} free-text" if n_text else "") + (f", {n_date} date/time" if n_date else "")
    out.print(f"Data: {data}: {len(ds.X)} rows, {ds.X.shape[1]} features ({n_num} numeric, {n_cat} categorical{dates})")
    out.print(f"Task: {ds.task} ({ds.task_reason})")
    for note in ds.notes:
        out.print(f"  note: {note}")
    rare = rare_class_note(ds.y, config.task, config.cv, config.classes)
    if rare:
        out.print(f"  note: {rare}")
    out.print(f"Run {config.run!r} in {url} ({'continuing' if existed else 'new'}): {', '.join(config.families)}; "
              f"optimising {config.metric} with {config.describe_folds()} (seed {config.seed})", soft_wrap=True)
    if config.space:
        out.print("Search space overrides (--space): " + "; ".join(
            f"{family} " + ", ".join(f"{k}={_override_text(v)}" for k, v in table["params"].items())
            + (f" (defaults {table['defaults']})" if table["defaults"] else "")
            for family, table in config.space.items()), soft_wrap=True, markup=False)
    before = standing(store, config) if existed else []
    for line in plan_lines(config, before, trials, timeout, existed):
        out.print(line, soft_wrap=True, markup=False)

    if create_only:
        _create_only(the_run)
        return

    out.print(f"Using {the_run.split.describe()}")
    started = time.monotonic()
    from tuner.execution.worker import Interrupted, install_sigterm_handler

    previous_sigterm = install_sigterm_handler()  # SIGTERM (a scheduler stopping the job) like Ctrl-C
    with RunProgress(config.families, to_run(config, before, trials, timeout), timeout, config.metric, console=err) as progress:
        try:
            families = the_run.tune(progress=progress, trial_timeout=trial_timeout)
        except KeyboardInterrupt as exc:
            progress.__exit__(None, None, None)
            from tuner.execution.worker import standing_text

            out.print("\nInterrupted: the current trial is recorded as failed; rerun the same command to continue.")
            out.print(f"Run {config.run!r} stands at: {standing_text(store, config)} complete")
            print_fitted(lb.fitted_table(lb.build(store, config), config, width=table_width(wide),
                                         wide_hint=_wide_hint(storage, config.run)), wide)
            raise typer.Exit(143 if isinstance(exc, Interrupted) else 130) from None
        finally:
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)
    done = sum(f.done_now for f in families)
    out.print(f"{done} trial(s) in {time.monotonic() - started:.1f}s")
    why = the_run.stopped_early()
    if why:
        out.print(f"  note: {why}; --whole-clock uses all of it", soft_wrap=True, markup=False)
    for fam in families:
        if fam.gave_up:
            out.print(f"  note: {fam.name} set aside: {fam.aside_reason()}")
    finished = the_run.finish(families)
    rows = finished.rows
    from tuner.deploy import final_fit

    print_fitted(lb.fitted_table(rows, config, width=table_width(wide), wide_hint=_wide_hint(storage, config.run)), wide)
    out.print(final_fit.line(finished.kept), soft_wrap=True, markup=False)
    if mlflow:
        from tuner.results.tracking import log_run

        out.print(f"MLflow: logged to {mlflow} (run {log_run(mlflow, store, config, rows)})", soft_wrap=True, markup=False)
    if next_steps if next_steps is not None else out.is_terminal:
        for line in next_step_lines(url, config, data, storage is not None):
            out.print(line, soft_wrap=True, markup=False)


def _create_only(the_run) -> None:
    """`tuner run --create-only`: the run and its budget go to the storage; workers do the rest."""
    config, url = the_run.config, the_run.url
    if config.source in ("", "<DataFrame>"):
        raise TunerError("--create-only needs DATA that workers can read again: a file path or URL, or builtin:NAME")
    spent = the_run.record_budget()
    out.print(f"Created run {config.run!r}: budget {spent.describe()}; data at {config.source}")
    if url.startswith("sqlite:"):
        out.print("  note: a SQLite storage is shared by processes on this machine only; "
                  "use --storage postgresql://HOST/DB for workers on other machines")
    out.print("Start workers (any number, on any machine that can reach the storage and the data):")
    out.print(f"  tuner worker --storage {url} --run {config.run}", soft_wrap=True)
    out.print(f"Watch: tuner leaderboard --storage {url} --run {config.run}", soft_wrap=True)


def _override_text(spec: dict) -> str:
    if "fixed" in spec:
        return repr(spec["fixed"])
    if "choices" in spec:
        return "|".join(map(str, spec["choices"]))
    return f"{spec['low']}–{spec['high']}"


def _source(data: str) -> str:
    if data.startswith("builtin:") or "://" in data:
        return data
    return str(Path(data).resolve())


def plan_lines(config, rows: list[dict], trials: Optional[int], timeout: Optional[float], existed: bool) -> list[str]:
    """What this invocation will do, per family: trials kept from before, owed by an earlier
    invocation (one stopped early: Ctrl-C, a kill, a clock), added now; the clock.

    The counts follow ``tuner.execution.budget.add``: ``--trials N`` makes a family's target
    ``max(target, complete) + N``, so owed trials are run first; ``--timeout`` alone replaces the
    counts by the clock (owed trials are dropped); ``--timeout`` with ``--trials`` bounds the invocation.
    """
    added = _added(trials, timeout)
    plan = _kept_owed(config, rows)
    lines = []
    kept_all, owed_all = sum(p[1] for p in plan), sum(p[2] for p in plan)
    if existed:
        lines.append(f"continuing run {config.run!r}: {kept_all} trials kept, {owed_all} owed"
                     + (" (owed: from an earlier invocation that stopped before its budget was spent)" if owed_all else ""))
    if added is None:
        what = "as many trials as the clock allows per family"
        if owed_all:
            what += f" (--timeout alone replaces the trial counts: the {owed_all} owed are dropped)"
        lines.append(f"This invocation: {what}")
    else:
        uniform = len({(k, o) for _, k, o in plan}) == 1
        if uniform:
            _, kept, owed = plan[0]
            lines.append(f"This invocation, per family: {kept} kept, {owed} owed + {added} added now "
                         f"= {owed + added} trial{'s' if owed + added != 1 else ''} to run")
        else:
            lines.append("This invocation, per family: " + "; ".join(
                f"{f} {k} kept, {o} owed + {added} added = {o + added} to run" for f, k, o in plan))
        lines.append(COUNTING_RULE)
    if timeout is not None:
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + timeout))
        lines.append(f"Clock: {timeout:g}s for this invocation (until about {until})")
    else:
        lines.append("Clock: none" + (" (--timeout SECONDS bounds an invocation, owed trials included)"
                                      if owed_all else "")
                     + "; on a terminal the progress estimates the time left once a trial has completed")
    return lines


# How --trials counts (tuner.execution.budget: a family's target is its COMPLETE trials).
COUNTING_RULE = ("  trials counted: complete ones only; a pruned trial (stopped early as worse than the family's "
                 "best, or by the clock) or a failed one does not count toward --trials, and another trial runs "
                 "in its place")


def _added(trials: Optional[int], timeout: Optional[float]) -> Optional[int]:
    from tuner.search.driver import DEFAULT_TRIALS

    return trials if trials is not None else (None if timeout is not None else DEFAULT_TRIALS)


def _kept_owed(config, rows: list[dict]) -> list[tuple[str, int, int]]:
    """(family, complete trials kept, trials owed) from ``tuner.execution.worker.standing`` rows."""
    by_family = {r["family"]: r for r in rows}
    plan = []
    for family in config.families:
        r = by_family.get(family, {})
        kept, target = r.get("complete", 0), r.get("target")
        plan.append((family, kept, max(target - kept, 0) if target is not None else 0))
    return plan


def to_run(config, rows: list[dict], trials: Optional[int], timeout: Optional[float]) -> dict[str, Optional[int]]:
    """Per family, the complete trials this invocation will run (None: the clock decides)."""
    added = _added(trials, timeout)
    return {f: None if added is None else owed + added for f, _, owed in _kept_owed(config, rows)}


def next_step_lines(url: str, config, data: str, storage_given: bool) -> list[str]:
    """The commands that come next, exactly as they run for this run and storage."""
    q = shlex.quote
    where = (f" --storage {q(url)}" if storage_given else "") + f" --run {q(config.run)}"
    model = f"{config.run}_model"
    return [
        "Next steps:",
        f"  export the winner:      tuner export{where} --out {q(model)}",
        f"  write the HTML report:  tuner report{where} --out {q(config.run + '_report.html')}",
        f"  predict a file:         tuner predict {q(model)} {q(data)} --out predictions.csv",
        f"  leaderboard as JSON:    tuner leaderboard{where} --format json",
    ]


def _wide_hint(storage: Optional[str], run: str) -> str:
    where = f" --storage {shlex.quote(storage)}" if storage else ""
    return f"`tuner leaderboard{where} --run {shlex.quote(run)} --wide`"
