"""Outliers inside every fold (regression): clipping at in-fold quantiles, dropping outlying
training rows, never the rows that are scored."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

import tuner
from tuner.data.outliers import QuantileClip, drop_outliers


def test_the_clip_bounds_come_from_the_training_rows_and_missing_values_stay_missing():
    train = np.r_[np.arange(100.0), [np.nan]].reshape(-1, 1)
    clip = QuantileClip().fit(train)
    assert clip.low_[0] == pytest.approx(np.nanquantile(train, 0.01))
    out = clip.transform(np.array([[-1e6], [1e6], [np.nan], [50.0]]))
    assert out[0, 0] == clip.low_[0] and out[1, 0] == clip.high_[0] and np.isnan(out[2, 0]) and out[3, 0] == 50.0
    assert QuantileClip().fit(np.full((5, 1), np.nan)).transform(np.array([[3.0]]))[0, 0] == 3.0  # no bounds


def test_the_detector_drops_the_far_rows_and_never_more_than_half():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(300, 2)), [[40.0, -40.0], [35.0, 50.0]]]
    kept, y = drop_outliers(X, np.arange(len(X)))
    assert len(kept) < len(X) and 300 not in y and 301 not in y
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(kind=pd.Categorical(["x"] * len(X)))
    kept, _ = drop_outliers(frame, np.arange(len(X)))  # native categories: detected on the numbers only
    assert isinstance(kept, pd.DataFrame) and list(kept.columns) == ["a", "b", "kind"]
    kept, y = drop_outliers(np.ones((5, 1)), np.arange(5))  # too few rows to tell
    assert len(kept) == 5


@pytest.fixture
def outlying_prices() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(240, 3)), columns=["a", "b", "c"])
    frame["price"] = 3 * frame["a"] + rng.normal(scale=0.5, size=240)
    frame.loc[:9, "a"] = 80.0  # a few wild feature values
    frame.loc[10:14, "price"] = 500.0  # and wild targets
    return frame


def test_a_fold_learns_both_steps_from_its_training_rows_and_predicts_every_scored_row(outlying_prices, monkeypatch):
    """The leak check of the two steps themselves: the detector sees the training rows of the fold
    and nothing at predict time; the clip bounds are the training rows' quantiles, not the scored rows'."""
    from tuner.data import outliers
    from tuner.data.dataset import prepare
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.search.run_setup import make_config

    seen = []

    def spy(X, y, **kw):
        seen.append(len(X))
        return drop_outliers(X, y, **kw)

    monkeypatch.setattr(outliers, "drop_outliers", spy)
    ds = prepare(outlying_prices, "price")
    config = make_config(ds, run="x", metric=None, models=["lasso"], cv=2, seed=0)
    est = build_estimator(config, "lasso", {"alpha": 1e-3, "prep_clip": True, "prep_outlier_rows": "drop"},
                          space_context(config, 1, n_rows=len(ds.X)))
    scored, train = ds.X.iloc[:40], ds.X.iloc[40:]  # the wild rows (0-14) are all scored, none trained on
    fit_quietly(est, train, ds.y[40:])
    assert seen == [len(train)]
    assert len(est.predict(scored)) == len(scored) and seen == [len(train)]  # nothing dropped, nothing detected
    pipeline = est.regressor_ if hasattr(est, "regressor_") else est
    clip = dict(pipeline.named_steps["prep"].named_transformers_["num"].steps)["clip"]
    a = list(ds.schema.numeric).index("a")
    assert clip.high_[a] == pytest.approx(np.quantile(train["a"], 0.99)) and clip.high_[a] < 10


def test_a_space_file_fixes_the_outlier_steps_and_every_scored_row_is_predicted(outlying_prices, tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    board = tuner.tune(outlying_prices, target="price", models=["lasso"], trials=3, cv=3, storage=storage, run="o",
                       space={"lasso": {"prep_clip": True, "prep_outlier_rows": "drop"}})
    study = optuna.load_study(study_name="o::lasso", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.params.get("prep_clip", True) and t.params.get("prep_outlier_rows", "drop") == "drop"
                        for t in done)
    assert board.loc[0, "status"] == "ok" and np.isfinite(board.loc[0, "rmse_mean"])
    model = tuner.export(str(tmp_path / "m"), run="o", storage=storage)  # skops: the steps load, trusted
    assert len(model.predict(outlying_prices)) == len(outlying_prices)  # rows are dropped in fit only
    pipeline = model.pipeline.regressor if hasattr(model.pipeline, "regressor") else model.pipeline
    assert "resample" in dict(pipeline.steps)


def test_a_space_file_can_forbid_them(outlying_prices, tmp_path):
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    space = tmp_path / "space.toml"  # the --space file itself, as the CLI reads it
    space.write_text('[lasso]\nprep_clip = false\nprep_outlier_rows = "keep"\n', encoding="utf-8")
    tuner.tune(outlying_prices, target="price", models=["lasso"], trials=4, cv=3, storage=storage, run="f",
               space=str(space))
    study = optuna.load_study(study_name="f::lasso", storage=storage)
    assert study.trials and all(t.params["prep_clip"] is False and t.params["prep_outlier_rows"] == "keep"
                                for t in study.trials)


@pytest.mark.parametrize("space, says", [
    ({"random_forest": {"prep_clip": True}}, "has no parameter 'prep_clip'"),  # trees are not clipped
    ({"lasso": {"prep_outlier_rows": "trim"}}, "'trim' is not one of its choices 'keep', 'drop'"),
])
def test_a_space_file_is_refused_where_the_steps_do_not_apply(outlying_prices, tmp_path, space, says):
    with pytest.raises(tuner.TunerError, match=says):
        tuner.tune(outlying_prices, target="price", models=list(space), trials=1, cv=2,
                   storage=f"sqlite:///{tmp_path / 'r.db'}", run="r", space=space)


def test_dropping_rows_does_not_leak_on_noise(tmp_path):
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.normal(size=(300, 6)), columns=[f"f{i}" for i in range(6)])
    noise["y"] = rng.normal(size=300)
    board = tuner.tune(noise, target="y", models=["lasso", "random_forest"], trials=3, cv=5,
                       storage=f"sqlite:///{tmp_path / 'n.db'}", run="n",
                       space={"lasso": {"prep_outlier_rows": "drop", "prep_clip": True},
                              "random_forest": {"prep_outlier_rows": "drop"}})
    assert (board.loc[board["status"] == "ok", "r2_mean"] < 0.05).all()
