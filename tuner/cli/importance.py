"""`tuner importance`: which columns the winner (or any family's best, or an exported model) relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tuner.cli.common import RunOpt, StorageOpt, choose_run, err, out, quiet_libraries, say_chosen_run, user_errors
from tuner.errors import TunerError


@user_errors
def importance(
    model_dir: Annotated[Optional[Path], typer.Argument(
        help="A model folder written by `tuner export`: print the importances in its card. "
             "Without it: compute them for a run's winner.")] = None,
    run_name: RunOpt = None,
    storage: StorageOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Family whose best trial to explain [default: the winner].")] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Shuffles per column (and fold).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    n_jobs: Annotated[Optional[int], typer.Option("--n-jobs", help="Threads of the refits [default: every core].")] = None,
) -> None:
    """Permutation importance of each column: how much worse the run's metric gets when the column is shuffled
    on held-out rows (the --test-size part, else up to 3 CV folds), mean ± std over the shuffles."""
    if model_dir is not None:
        if run_name or storage or model:
            raise TunerError("give a model folder or --run / --storage / --model, not both")
        result = _from_card(model_dir)
    else:
        quiet_libraries()
        from tuner.cli.activity import Activity
        from tuner.data.dataset import load_split_for_run
        from tuner.deploy.export import choose_row
        from tuner.execution.cores import refit_threads
        from tuner.results import leaderboard as lb
        from tuner.results.importance import permutation_importances
        from tuner.storage.runs import open_storage

        if repeats < 2:
            raise TunerError(f"--repeats must be at least 2, for a spread (got {repeats})")
        store = open_storage(storage, create=False)
        config = choose_run(store, run_name, storage)
        row = choose_row(lb.build(store, config), model, config.run)
        say_chosen_run(if_shown=True)  # before the steps shown below
        with Activity(err) as step:  # on a terminal only: each refit and each fold's shuffles, with estimates
            step(f"reading the run's data ({config.source})", None)
            train, test = load_split_for_run(config)
            result = permutation_importances(config, row["model"], row["params"], train, test,
                                             n_jobs=refit_threads(n_jobs), repeats=repeats, on_step=step, row=row)
    say_chosen_run()
    if as_json:
        out.print(json.dumps(result, indent=2), markup=False, soft_wrap=True)
        return
    for line in lines(result):
        out.print(line, markup=False, soft_wrap=True)


def _from_card(folder: Path) -> dict:
    card_path = folder / "model_card.json"
    if not card_path.is_file():
        raise TunerError(f"{folder} is not a model folder (no model_card.json); write one with `tuner export --out`")
    card = json.loads(card_path.read_text())
    result = card.get("feature_importance")
    if not result:
        raise TunerError(f"{folder}'s card has no importances (exported before they were recorded, or with "
                         "--no-importance); run `tuner importance --run RUN` on its run instead")
    if "error" in result:
        raise TunerError(f"the importances of {folder} could not be computed at export: {result['error']}")
    return result


def lines(result: dict) -> list[str]:
    """The importances as aligned text lines, with a bar per column."""
    columns = result["columns"]
    top = max([abs(c["mean"]) for c in columns] + [1e-12])
    width = max(len(c["column"]) for c in columns)
    text = [f"{result['family']}: how much worse {result['metric']} gets when a column is shuffled, on {result['where']} "
            f"(mean ± std over {result['repeats']} shuffles per fold)"]
    for c in columns:
        bar = "█" * int(round(20 * max(c["mean"], 0.0) / top))
        text.append(f"  {c['column']:<{width}}  {c['mean']:+.4f} ± {c['std']:.4f}  {bar}")
    text.append("Near 0 or below: the model does not need the column (or a correlated one stands in for it).")
    return text


__all__ = ["importance", "lines"]
