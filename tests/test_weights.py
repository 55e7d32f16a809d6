"""Row weights (--weights, issue #19): every fit, every metric, the final refit; bad weights refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner

import search_spaces
import tuner
from tuner.cli import app
from tuner.data import preprocessing
from tuner.data.dataset import prepare
from tuner.deploy.export import export_model
from tuner.errors import TunerError
from tuner.evaluation.cross_validation import fit_quietly
from tuner.evaluation.estimator import build_estimator, space_context
from tuner.evaluation.metrics import score_splits
from tuner.evaluation.weights import fit_params
from tuner.search.run_setup import make_config

runner = CliRunner()


def flipped_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A clean rule on half the rows; the other half has the label flipped and weight 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    clean = (x[:, 0] + x[:, 1] > 0).astype(int)
    flipped = rng.random(n) < 0.5
    y = np.where(flipped, 1 - clean, clean)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": np.where(y == 1, "yes", "no"),
                         "w": np.where(flipped, 0.0, 1.0)})


def test_weighted_metrics_equal_scikit_learns_with_sample_weight():
    rng = np.random.default_rng(0)
    for task, k in (("binary", 2), ("multiclass", 4), ("regression", 0)):
        splits, expected = [], []
        for n in (50, 80, 33):
            w = rng.random(n) * 3
            w[:5] = 0
            if task == "regression":
                y = rng.normal(size=n)
                p = y + rng.normal(size=n)
                splits.append((y, p, None, w))
                mse = skm.mean_squared_error(y, p, sample_weight=w)
                expected.append({"mse": mse, "rmse": np.sqrt(mse), "mae": skm.mean_absolute_error(y, p, sample_weight=w),
                                 "r2": skm.r2_score(y, p, sample_weight=w)})
                continue
            y = rng.integers(k, size=n)
            proba = rng.dirichlet(np.ones(k), size=n)
            p = proba.argmax(axis=1)
            splits.append((y, p, proba, w))
            avg = "binary" if k == 2 else "macro"
            expected.append({
                "accuracy": skm.accuracy_score(y, p, sample_weight=w),
                "precision": skm.precision_score(y, p, sample_weight=w, average=avg, zero_division=0),
                "recall": skm.recall_score(y, p, sample_weight=w, average=avg, zero_division=0),
                "f1": skm.f1_score(y, p, sample_weight=w, average=avg, zero_division=0),
                "log_loss": skm.log_loss(y, proba, sample_weight=w, labels=range(k)),
                "roc_auc": (skm.roc_auc_score(y, proba[:, 1], sample_weight=w) if k == 2 else
                            skm.roc_auc_score(y, proba, sample_weight=w, multi_class="ovr", labels=range(k))),
            })
        for got, want in zip(score_splits(task, splits, k), expected):
            for name, value in want.items():
                assert got[name] == pytest.approx(value, abs=1e-9), (task, name)
        # weights of 1 give the unweighted scores
        plain = score_splits(task, [s[:3] for s in splits], k)
        ones = score_splits(task, [(*s[:3], np.ones(len(s[0]))) for s in splits], k)
        for a, b in zip(plain, ones):
            assert a == pytest.approx(b, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_every_family_takes_the_weights_in_its_fit(task):
    """Zero weight on half the rows changes every family's model; no family refuses them."""
    df = flipped_frame(n=160)
    if task == "regression":
        df["y"] = df["a"] * 3 + np.where(df["w"] == 0, 50.0, 0.0)  # the zero-weight rows are far off
    ds = prepare(df, "y", task=task, weights="w")
    assert "w" not in ds.X.columns
    config = make_config(ds, run="r", metric=None, models=None, cv=3, seed=0)
    ctx = space_context(config)
    for space in search_spaces.available_spaces(task):
        if space.name == "keras_mlp" or search_spaces.is_plugin(space.name):
            continue  # tests/models/test_keras_mlp.py::test_sample_weight_reaches_the_loss; families other tests registered
        params = {**space.defaults(ctx), **preprocessing.defaults(ctx, space.preprocessing, ds.schema, 0.0, True)}
        weighted = build_estimator(config, space.name, params, ctx)
        plain = build_estimator(config, space.name, params, ctx)
        assert fit_params(weighted, ds.weights), space.name
        fit_quietly(weighted, ds.X, ds.y, **fit_params(weighted, ds.weights))
        fit_quietly(plain, ds.X, ds.y)
        assert not np.allclose(weighted.predict(ds.X), plain.predict(ds.X)), space.name


def test_resampling_is_not_searched_on_a_weighted_run():
    df = flipped_frame(n=200)
    df.loc[df.index[:180], "y"] = "no"  # 10:1 imbalance: resampling would be searched
    ds = prepare(df, "y")
    config = make_config(ds, run="r", metric=None, models=None, cv=3, seed=0)
    ctx = space_context(config)
    spec = search_spaces.get_space("random_forest").preprocessing
    assert "prep_resample" in preprocessing._choices(ctx, spec, ds.schema, 0.0)
    assert "prep_resample" not in preprocessing._choices(ctx, spec, ds.schema, 0.0, weighted=True)


def test_weights_keep_the_flipped_rows_out_of_the_model_and_the_scores(tmp_path, storage_url):
    df = flipped_frame()
    fresh = flipped_frame(n=1000, seed=1)
    clean = fresh[fresh["w"] > 0]
    df.to_csv(tmp_path / "rows.csv", index=False)
    df.drop(columns=["w"]).to_csv(tmp_path / "plain.csv", index=False)  # as a feature, w would give them away
    board = tuner.tune(str(tmp_path / "rows.csv"), target="y", models="logistic_regression", trials=2, cv=3,
                       test_size=0.25, storage=storage_url, run="weighted", weights="w")
    assert board["roc_auc_mean"][0] > 0.9 and board["test_accuracy"][0] > 0.85  # scored on the clean rows only
    tuner.tune(str(tmp_path / "plain.csv"), target="y", models="logistic_regression", trials=2, cv=3, test_size=0.25,
               storage=storage_url, run="plain")
    scores = {}
    for run in ("weighted", "plain"):
        export_model(tmp_path / run, run=run, storage=storage_url)
        model = tuner.load(tmp_path / run)
        scores[run] = float(np.mean(model.predict(clean.drop(columns=["y", "w"])) == clean["y"].to_numpy()))
    assert scores["weighted"] > 0.9
    assert scores["plain"] < scores["weighted"] - 0.2
    card = json.loads((tmp_path / "weighted" / "model_card.json").read_text())
    assert card["data"]["weights"] == "w" and all(c["name"] != "w" for c in card["schema"]["columns"])


@pytest.mark.parametrize("bad, message", [
    (-1.0, r"1 negative or infinite value\(s\) \(e.g. -1\)"),
    (np.inf, "1 negative or infinite value"),
    (None, "is empty in 1 row"),
    ("heavy", r"1 value\(s\) that are not numbers \(e.g. 'heavy'\)"),
])
def test_bad_weights_are_refused(bad, message):
    df = flipped_frame(n=40)
    df["w"] = pd.Series([1.0] * 39 + [bad], dtype=object)
    with pytest.raises(TunerError, match=message):
        prepare(df, "y", weights="w")
    with pytest.raises(TunerError, match="every weight in 'w' is zero"):
        prepare(flipped_frame(n=40).assign(w=0.0), "y", weights="w")
    with pytest.raises(TunerError, match="--weights 'y' is the target column"):
        prepare(flipped_frame(n=40), "y", weights="y")


def test_cli_weights_belong_to_the_run(tmp_path, storage_url):
    path = tmp_path / "rows.csv"
    flipped_frame(n=120).to_csv(path, index=False)
    base = ["run", str(path), "--target", "y", "--models", "logistic_regression", "--trials", "1", "--cv", "3",
            "--storage", storage_url, "--run", "w"]
    res = runner.invoke(app, base + ["--weights", "w"])
    assert res.exit_code == 0, res.output
    assert "row weights from 'w'" in " ".join(res.stdout.split())
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "pass --weights w to continue the run" in res.output
    res = runner.invoke(app, ["run", str(path), "--target", "y", "--weights", "nope", "--storage", storage_url])
    assert res.exit_code == 2 and "--weights column 'nope' is not in the data" in res.output
