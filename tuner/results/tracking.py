"""Experiment tracking in MLflow (optional extra ``mlflow``): a run's leaderboard as MLflow runs.

One MLflow run per tuner run (experiment ``tuner``, found again by its tag ``tuner.run``, so a resumed
run updates it), with one nested run per leaderboard row (each family, and the ensemble): the best
trial's parameters, every metric's fold mean and std (``<metric>_mean`` / ``_std``, ``test_<metric>``
with a held-out part) and the trial counts. MLflow parameters cannot change: when a family's best
trial changed since the last logging, its nested run is closed (tag ``tuner.superseded``) and a new
one started. The leaderboard goes with the parent run as ``leaderboard.csv`` and ``leaderboard.html``.
``tuner export --mlflow`` logs the model folder under the parent run (``model/``), which MLflow can
load as a model (``tuner.deploy.mlflow_model``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tuner.config import RunConfig
from tuner.errors import TunerError
from tuner.results import leaderboard as lb

EXPERIMENT = "tuner"


def require_mlflow():
    try:
        import mlflow
    except ImportError:
        raise TunerError("--mlflow needs MLflow: pip install 'tuner[mlflow]'") from None
    return mlflow


def _client(uri: str):
    require_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _refused(uri: str, exc: Exception) -> TunerError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return TunerError(f"MLflow cannot use the tracking URI {uri!r}: {first} "
                      "(a local store: --mlflow sqlite:///mlflow.db)")


def check(uri: str) -> None:
    """Fail before anything is done when MLflow is missing or refuses ``uri`` (exit 2, one line)."""
    require_mlflow()
    from mlflow.exceptions import MlflowException

    try:
        _experiment(_client(uri))
    except MlflowException as exc:
        raise _refused(uri, exc) from None


def _experiment(client) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    return found.experiment_id if found is not None else client.create_experiment(EXPERIMENT)


def parent_run(client, config: RunConfig) -> str:
    """The MLflow run of tuner run ``config.run`` (created the first time)."""
    experiment = _experiment(client)
    quoted = config.run.replace("'", "\\'")
    found = client.search_runs([experiment], max_results=1,
                               filter_string=f"tags.`tuner.run` = '{quoted}' and tags.`tuner.role` = 'run'")
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment, run_name=config.run, tags={"tuner.run": config.run, "tuner.role": "run"})
    for key, value in {"task": config.task, "target": config.target, "metric": config.metric,
                       "cv": config.cv, "cv_repeats": config.cv_repeats, "seed": config.seed,
                       "test_size": config.test_size, "families": ",".join(config.families),
                       "rows": config.n_rows, "features": config.n_features, "source": config.source[:500]}.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def log_run(uri: str, storage, config: RunConfig, rows: list[dict] | None = None) -> str:
    """Log the run's leaderboard (``rows``, default: built from the storage); the parent run's id."""
    from mlflow.exceptions import MlflowException

    try:
        return _log_run(_client(uri), storage, config, rows)
    except MlflowException as exc:
        raise _refused(uri, exc) from None


def _log_run(client, storage, config: RunConfig, rows: list[dict] | None) -> str:
    rows = rows if rows is not None else lb.build(storage, config)
    parent = parent_run(client, config)
    experiment = client.get_run(parent).info.experiment_id  # read once, not once per family
    children = {r.data.tags.get("tuner.family"): r for r in client.search_runs(
        [experiment],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}' and tags.`tuner.superseded` = 'no'")}
    total = 0
    for row in rows:
        total += sum(row["trials"].get(k, 0) for k in ("complete", "pruned", "failed"))
    for row in rows:
        if row["status"] != "ok":
            continue
        params = _flat_params(row)
        child = children.get(row["model"])
        if child is not None and any(child.data.params.get(k) not in (None, v) for k, v in params.items()):
            client.set_tag(child.info.run_id, "tuner.superseded", "yes")  # a new best trial: a new nested run
            client.set_terminated(child.info.run_id)
            child = None
        if child is None:
            child_id = client.create_run(experiment, run_name=row["model"], tags={
                "mlflow.parentRunId": parent, "tuner.family": row["model"], "tuner.run": config.run,
                "tuner.role": "family", "tuner.superseded": "no"}).info.run_id
            for key, value in params.items():
                client.log_param(child_id, key, value)
        else:
            child_id = child.info.run_id
        for name, m in row["metrics"].items():
            for stat in ("mean", "std"):
                if m.get(stat) is not None:
                    client.log_metric(child_id, f"{name}_{stat}", float(m[stat]), step=total)
        for name, value in (row.get("test_scores") or {}).items():
            if value is not None:
                client.log_metric(child_id, f"test_{name}", float(value), step=total)
        for state, count in row["trials"].items():
            client.log_metric(child_id, f"trials_{state}", float(count), step=total)
        if row.get("rank") is not None:
            client.log_metric(child_id, "rank", float(row["rank"]), step=total)
        client.set_terminated(child_id)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fmt in (("leaderboard.csv", "csv"), ("leaderboard.html", "html")):
            Path(tmp, name).write_text(lb.render(rows, config, fmt), encoding="utf-8")
            client.log_artifact(parent, str(Path(tmp, name)))
    client.log_metric(parent, "trials", float(total), step=total)
    client.set_terminated(parent)
    return parent


def _flat_params(row: dict) -> dict[str, str]:
    """The best trial's parameters as MLflow params (an ensemble: its members and weights)."""
    if "members" in row:
        return {f"member{i}": f"{m['model']}#{m['trial_number']}@{m['weight']:.4f}" for i, m in enumerate(row["members"])}
    params = {key: str(value)[:500] for key, value in (row.get("params") or {}).items()}
    params["trial_number"] = str(row.get("trial_number"))
    return params


def log_model(uri: str, config: RunConfig, folder: Path) -> str:
    """Log an exported model folder under the run's MLflow run, as ``model/``; the run's id."""
    from mlflow.exceptions import MlflowException

    try:
        client = _client(uri)
        parent = parent_run(client, config)
        client.log_artifacts(parent, str(folder), artifact_path="model")
    except MlflowException as exc:
        raise _refused(uri, exc) from None
    return parent


__all__ = ["log_run", "log_model", "check", "require_mlflow", "EXPERIMENT"]
