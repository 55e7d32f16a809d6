"""The run's ensemble: greedy selection on out-of-fold predictions, nested so its CV score is
honest; a leaderboard row; exported, loaded, served and converted like any model."""

from __future__ import annotations

import json
import os
import urllib.request

import numpy as np
import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from export_helpers import binary_frame, regression_frame, serving
from tuner.cli.app import app
from tuner.evaluation.ensemble_selection import greedy_weights, select
from tuner.evaluation.metrics import score_all
from tuner.storage import out_of_fold
from tuner.storage.runs import family_study_name

runner = CliRunner()


def _folds(n: int, k: int, repeats: int = 1, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rows, sizes = [], []
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        for part in np.array_split(rng.permutation(n), k):
            rows.append(part)
            sizes.append(len(part))
    return np.concatenate(rows), sizes


def test_greedy_selection_blends_complementary_models_and_ignores_a_useless_one():
    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    a = y + rng.normal(scale=1.0, size=y.size)  # two models with independent errors ...
    b = y + rng.normal(scale=1.0, size=y.size)
    junk = 10 + rng.normal(size=y.size)  # ... and one that is far off
    weights = greedy_weights([a, b, junk], y, None, "regression", 0, "rmse")
    assert weights[2] == 0 and weights.sum() == pytest.approx(1.0)
    assert 0.3 < weights[0] < 0.7
    blended = weights[0] * a + weights[1] * b
    assert score_all("regression", y, blended, None, 0)["rmse"] < 0.8 * score_all("regression", y, a, None, 0)["rmse"]


def test_nested_selection_gives_pure_noise_no_lift_that_plain_selection_would():
    """20 candidates predicting noise for noise labels: choosing the weights on the scored rows
    themselves lifts the ensemble above its members; choosing them on the other folds does not."""
    rng = np.random.default_rng(1)
    n, k = 300, 5
    y = rng.integers(0, 2, size=n)
    rows, sizes = _folds(n, k)
    preds = []
    for _ in range(20):
        p = rng.random(n)
        preds.append(np.column_stack([1 - p, p]))
    best_member = max(score_all("binary", y, p.argmax(1), p, 2)["roc_auc"] for p in preds)
    in_sample = greedy_weights(preds, y, None, "binary", 2, "roc_auc")
    lifted = score_all("binary", y, sum(w * p for w, p in zip(in_sample, preds)).argmax(1),
                       sum(w * p for w, p in zip(in_sample, preds)), 2)["roc_auc"]
    nested = select([p[rows] for p in preds], y[rows], None, sizes, k, "binary", 2, "roc_auc")
    honest = float(np.mean([s["roc_auc"] for s in nested.fold_scores]))
    assert lifted > best_member + 0.02  # what an in-sample selection reports
    assert honest < best_member  # nested: no lift from fitting the selection to the noise
    assert nested.weights.sum() == pytest.approx(1.0)


def test_time_ordered_selection_never_uses_later_folds():
    """Forward: fold f's weights come from folds before it; the first fold scores the plain average."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=400)
    good_late = np.concatenate([rng.normal(size=200), y[200:]])  # useless early, perfect later
    steady = y + rng.normal(scale=0.5, size=400)
    sizes = [100, 100, 100, 100]
    forward = select([good_late, steady], y, None, sizes, 4, "regression", 0, "rmse", forward=True)
    both = 0.5 * good_late[:100] + 0.5 * steady[:100]
    assert forward.fold_scores[0]["rmse"] == pytest.approx(score_all("regression", y[:100], both, None, 0)["rmse"])
    # fold 2 (rows 200-299) chose on folds 0-1, where good_late is useless: steady dominates it
    assert forward.fold_scores[2]["rmse"] > 0.1


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ens_binary")
    csv = folder / "churn.csv"
    binary_frame(n=240).to_csv(csv, index=False)
    storage = f"sqlite:///{folder / 'tuner.db'}"
    tuner.tune(str(csv), target="churned", models=["logistic_regression", "random_forest", "xgboost"], trials=4,
               cv=3, storage=storage, run="e")
    return folder, storage, csv


def test_the_ensemble_is_a_leaderboard_row_with_members_weights_and_a_paired_test(binary_run):
    folder, storage, _ = binary_run
    res = runner.invoke(app, ["leaderboard", "--storage", storage, "--run", "e", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = {r["model"]: r for r in json.loads(res.stdout)}
    ens = rows["ensemble"]
    assert ens["status"] == "ok" and ens["rank"] >= 1
    assert len(ens["members"]) >= 2
    assert sum(m["weight"] for m in ens["members"]) == pytest.approx(1.0)
    assert {m["model"] for m in ens["members"]} <= {"logistic_regression", "random_forest", "xgboost"}
    for name in ("roc_auc", "accuracy", "f1", "log_loss", "precision", "recall"):
        assert ens["metrics"][name]["mean"] is not None and len(ens["fold_scores"][name]) == 3
    if ens["rank"] > 1:
        assert "p_value_vs_leader" in ens


def test_only_a_familys_best_trials_keep_their_predictions(binary_run):
    _, storage, _ = binary_run
    for family in ("logistic_regression", "random_forest", "xgboost"):
        study = optuna.load_study(study_name=family_study_name("e", family), storage=storage)
        complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
        best = sorted(complete, key=lambda t: t.value, reverse=True)[:out_of_fold.KEEP]
        assert all(out_of_fold.TRIAL_ATTR in t.user_attrs for t in best)
        for t in complete:
            if out_of_fold.TRIAL_ATTR in t.user_attrs:  # kept as float32, one value per fold test row
                kept = out_of_fold.unpack(t.user_attrs[out_of_fold.TRIAL_ATTR])
                assert kept.dtype == np.float32 and kept.shape == (240,)
            else:  # not kept: some earlier trials were better when it ended
                earlier = [u for u in complete if u.number < t.number and u.value >= t.value]
                assert len(earlier) >= out_of_fold.KEEP


def test_the_exported_ensemble_predicts_serves_and_converts(binary_run):
    folder, storage, csv = binary_run
    out = folder / "model"
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "e", "--model", "ensemble", "--out", str(out), "--importance",
                              "--onnx"])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["family"] == "ensemble" and card["pipeline"]["format"] == "ensemble"
    members = card["params"]["members"]
    assert len(members) == len(card["pipeline"]["members"]) >= 2
    assert card["pipeline"]["weights"] == pytest.approx([m["weight"] for m in members])
    assert card["onnx"]["status"] == "verified", card["onnx"]
    assert card["feature_importance"]["columns"]
    model = tuner.load(out)
    raw = pd.read_csv(csv)
    proba = model.predict_proba(raw)
    # the weighted average of the members, each refit as its own family would be
    one = [tuner.load(_export_member(folder, storage, m, i)) for i, m in enumerate(members)]
    expected = sum(m["weight"] * o.predict_proba(raw).to_numpy() for m, o in zip(members, one))
    np.testing.assert_allclose(proba.to_numpy(), expected, atol=1e-6)
    res = runner.invoke(app, ["predict", str(out), str(csv), "--out", str(folder / "p.csv")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(folder / "p.csv")) == len(raw)
    records = json.loads(raw.drop(columns=["churned"]).head(3).to_json(orient="records"))
    with serving(out, folder / "serve.log", env={**os.environ, "TUNER_SERVE_TOKEN": ""}) as (base, _):
        req = urllib.request.Request(base + "/predict", data=json.dumps({"records": records}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as reply:
            body = json.loads(reply.read())
    assert list(body["predictions"]) == list(model.predict(raw.head(3)))


def _export_member(folder, storage, member: dict, i: int):
    """A member's trial refit alone (the trial may not be its family's best): the same builder."""
    from tuner.data.dataset import load_for_run
    from tuner.deploy import artifact
    from tuner.deploy.export import refit
    from tuner.storage.runs import open_storage, require_config

    config = require_config(open_storage(storage, create=False), "e")
    fitted, _ = refit(config, member["model"], member["params"], load_for_run(config))
    out = folder / f"member{i}"
    artifact.write(fitted, {"format": artifact.FORMAT, "format_version": artifact.FORMAT_VERSION, "task": config.task,
                            "family": member["model"], "target": config.target, "classes": list(config.classes),
                            "schema": config.schema, "versions": {}}, out)
    return out


def test_a_resumed_run_rebuilds_the_ensemble_from_its_new_best_trials(tmp_path):
    csv = tmp_path / "prices.csv"
    regression_frame(n=150).to_csv(csv, index=False)
    storage = f"sqlite:///{tmp_path / 'tuner.db'}"
    common = dict(target="price", models=["lasso", "random_forest"], cv=3, storage=storage, run="r")
    tuner.tune(str(csv), trials=2, **common)
    study = optuna.load_study(study_name="r", storage=storage)
    first = study.user_attrs["ensemble"]["key"]
    tuner.tune(str(csv), trials=6, **common)
    board = tuner.leaderboard(run="r", storage=storage)
    assert "ensemble" in set(board["model"]) or len(json.loads(runner.invoke(
        app, ["leaderboard", "--storage", storage, "--run", "r", "--format", "json"]).stdout)) == 2
    study = optuna.load_study(study_name="r", storage=storage)
    assert study.user_attrs["ensemble"]["key"] != first  # built again from the new candidates
