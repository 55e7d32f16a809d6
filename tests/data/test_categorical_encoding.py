"""Categorical-rich tables: native categories (XGBoost, HistGradientBoosting) and the in-fold
target encoding of high-cardinality columns (prep_high_cardinality)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import search_spaces
from export_helpers import binary_frame, multiclass_frame
from search_spaces import SpaceContext
from tuner.data import preprocessing
from tuner.data.dataset import prepare
from tuner.evaluation.cross_validation import fit_quietly, predict_outputs


def _pipeline(ds, family, params=None, n_rows=None):
    space = search_spaces.get_space(family)
    ctx = SpaceContext(task=ds.task, n_rows=n_rows or len(ds.X), n_features=ds.X.shape[1], n_classes=ds.n_classes,
                       seed=0)
    prep, model = preprocessing.split_params({**space.defaults(ctx), **(params or {})})
    return preprocessing.build_pipeline(space.build(model, ctx), prep, ctx, space.preprocessing, ds.schema), ctx


def _many_levels(n=2400, levels=300, seed=0):
    """A binary target driven by a categorical column with more levels than HGB's 255 bins."""
    rng = np.random.default_rng(seed)
    shop = rng.permutation(np.resize([f"s{i}" for i in range(levels)], n))  # every level in n / levels rows
    effect = {f"s{i}": (i % 3 == 0) * 2.0 for i in range(levels)}
    x = rng.normal(size=n)
    signal = x + np.array([effect[s] for s in shop]) + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x": x, "shop": shop, "y": np.where(signal > 1.0, "yes", "no")})


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
def test_native_encoding_hands_categories_to_the_model(family):
    ds = prepare(binary_frame(), "churned")
    pipe, _ = _pipeline(ds, family)
    fit_quietly(pipe, ds.X, ds.y)
    coded = pipe.named_steps["prep"].transform(ds.X)
    assert isinstance(coded, pd.DataFrame)
    assert isinstance(coded["city"].dtype, pd.CategoricalDtype)
    assert coded["x1"].isna().any()  # numbers keep NaN: the trees route missing values themselves
    model = pipe.named_steps["model"]
    if family == "xgboost":
        assert model.get_params()["enable_categorical"]
        assert "c" in model.get_booster().feature_types
    else:
        assert list(model.is_categorical_) == [c == "city" for c in coded.columns]


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
def test_native_encoding_survives_unseen_and_missing_categories(family):
    ds = prepare(binary_frame(), "churned")
    pipe, _ = _pipeline(ds, family)
    fit_quietly(pipe, ds.X, ds.y)
    rows = pd.concat([ds.X.head(3)] * 3, ignore_index=True)
    rows.loc[0:2, "city"] = "Atlantis"  # never seen in training
    rows.loc[3:5, "city"] = np.nan
    codes, proba = predict_outputs(pipe, rows, ds.task, ds.n_classes)
    assert np.isfinite(proba).all()
    # an unknown category is read as missing: the same prediction as a missing cell
    np.testing.assert_allclose(proba[0:3], proba[3:6])


def test_native_codes_stay_within_the_255_bins_of_hist_gradient_boosting():
    ds = prepare(_many_levels(), "y")
    pipe, _ = _pipeline(ds, "hist_gradient_boosting")
    fit_quietly(pipe, ds.X, ds.y)  # more than 255 categories would make the fit fail
    coded = pipe.named_steps["prep"].transform(ds.X)
    n = len(coded["shop"].cat.categories)
    assert 1 < n <= 255
    assert coded["shop"].isna().sum() == 0  # rare levels are grouped, not lost


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_hist_gradient_boosting_fits_text_and_missing_cells(task):
    rng = np.random.default_rng(3)
    n = 300
    colour = rng.choice(["red", "green", "blue", None], size=n)
    x = np.where(rng.random(n) < 0.15, np.nan, rng.normal(size=n))
    signal = np.nan_to_num(x) + (colour == "red") * 1.5
    target = {"binary": np.where(signal > 0.5, "yes", "no"),
              "multiclass": np.array(["a", "b", "c"])[np.digitize(signal, [-0.3, 0.8])],
              "regression": signal * 10 + rng.normal(size=n)}[task]
    ds = prepare(pd.DataFrame({"x": x, "colour": colour, "t": target}), "t")
    assert ds.task == task
    pipe, ctx = _pipeline(ds, "hist_gradient_boosting")
    fit_quietly(pipe, ds.X, ds.y)
    model = pipe.named_steps["model"]
    assert model.early_stopping and model.n_iter_ < model.max_iter  # stopped early, not at the ceiling
    codes, proba = predict_outputs(pipe, ds.X, task, ds.n_classes)
    if task == "regression":
        assert np.corrcoef(codes, ds.y)[0, 1] > 0.8
    else:
        assert (codes == ds.y).mean() > 0.7 and proba.shape == (n, ds.n_classes)


def test_hist_gradient_boosting_limits_its_threads():
    ds = prepare(binary_frame(), "churned")
    pipe, ctx = _pipeline(ds, "hist_gradient_boosting")
    assert pipe.named_steps["model"].get_params()["n_threads"] == ctx.n_jobs


def test_the_family_is_listed_and_in_the_defaults_of_every_task():
    for task in ("binary", "multiclass", "regression"):
        assert "hist_gradient_boosting" in search_spaces.default_family_names(task)


def _choices(ds, family):
    space = search_spaces.get_space(family)
    ctx = SpaceContext(task=ds.task, n_rows=len(ds.X), n_features=ds.X.shape[1], n_classes=ds.n_classes)
    return preprocessing._choices(ctx, space.preprocessing, ds.schema, 0.0)


def test_target_encoding_is_offered_only_for_high_cardinality_columns():
    many = prepare(multiclass_frame(), "label")  # 'shop' has 45 levels (> 30 one-hot keeps)
    few = prepare(binary_frame(), "churned")
    assert _choices(many, "logistic_regression")["prep_high_cardinality"] == ["onehot", "target"]
    assert _choices(many, "random_forest")["prep_high_cardinality"] == ["ordinal", "target"]
    assert "prep_high_cardinality" not in _choices(many, "xgboost")  # native categories instead
    assert "prep_high_cardinality" not in _choices(few, "logistic_regression")
    assert "prep_high_cardinality" in preprocessing.describe("binary")


def test_target_encoding_multiclass_gives_one_column_per_class():
    ds = prepare(multiclass_frame(), "label")
    pipe, _ = _pipeline(ds, "logistic_regression", {"prep_high_cardinality": "target"})
    fit_quietly(pipe, ds.X, ds.y)
    ct = pipe.named_steps["prep"]
    assert ct.named_transformers_["target"].named_steps["encode"].target_type_ == "multiclass"
    assert sum("shop" in str(n) for n in ct.get_feature_names_out()) == ds.n_classes


def test_target_encoding_of_an_integer_regression_target_under_a_transform():
    df = multiclass_frame()
    df["label"] = np.random.default_rng(0).integers(0, 40, size=len(df))  # integers: not classes
    ds = prepare(df, "label", "regression")
    pipe, _ = _pipeline(ds, "lasso", {"prep_high_cardinality": "target", "prep_target": "yeo_johnson"})
    fit_quietly(pipe, ds.X, ds.y)
    enc = pipe.regressor_.named_steps["prep"].named_transformers_["target"].named_steps["encode"]
    assert enc.target_type_ == "continuous"
    assert np.isfinite(pipe.predict(ds.X)).all()


def test_target_encoding_learns_from_the_training_fold_only():
    """A level seen only in the validation rows gets the training mean; training rows get
    cross-fitted statistics (a level unique to one row cannot encode its own target)."""
    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n), "code": [f"c{i}" for i in range(n)],
                       "y": rng.choice(["a", "b"], size=n)})
    df.loc[:39, "code"] = [f"r{i % 10}" for i in range(40)]  # some repeated levels, so it is categorical
    ds = prepare(df, "y")
    assert "code" in ds.schema.encoded and "code" in preprocessing.high_cardinality(ds.schema)
    pipe, _ = _pipeline(ds, "logistic_regression", {"prep_high_cardinality": "target"})
    train, valid = np.arange(0, 150), np.arange(150, n)
    fit_quietly(pipe, ds.X.iloc[train], ds.y[train])
    enc = pipe.named_steps["prep"].named_transformers_["target"].named_steps["encode"]
    seen = set(enc.categories_[0])
    assert not seen & set(ds.X["code"].iloc[valid])  # validation levels never reached the encoder
    out = enc.transform(ds.X[["code"]].iloc[valid])
    np.testing.assert_allclose(out, enc.target_mean_)
    # in fit_transform, a level present in one training row is unknown to the other folds
    crossfit = enc.fit_transform(ds.X[["code"]].iloc[train], ds.y[train])
    unique_rows = np.arange(40, 150)
    assert np.abs(crossfit[unique_rows, 0] - ds.y[train][unique_rows]).min() > 0.2


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
def test_a_fold_where_a_categorical_column_is_all_missing(family):
    ds = prepare(binary_frame(), "churned")
    X = ds.X.copy()
    X.loc[:59, "city"] = np.nan
    pipe, _ = _pipeline(ds, family, {"prep_resample": "oversample"})
    fit_quietly(pipe, X.iloc[:60], ds.y[:60])
    codes, proba = predict_outputs(pipe, X.iloc[60:], ds.task, ds.n_classes)
    assert np.isfinite(proba).all()


def test_target_encoding_scores_chance_on_noise():
    """Cross-validated through the pipeline, a target-encoded column of pure noise predicts nothing:
    the encoder never sees the validation rows (it would, were it fitted before the split)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "code": rng.choice([f"k{i}" for i in range(80)], size=n),
                       "y": rng.choice(["a", "b"], size=n)})
    ds = prepare(df, "y")
    pipe, _ = _pipeline(ds, "logistic_regression", {"prep_high_cardinality": "target"})
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(pipe, ds.X, ds.y, cv=folds, scoring="roc_auc").mean()
    assert abs(auc - 0.5) < 0.08
    leaky = ds.X.copy()  # the same column encoded with every row's target first: far above chance
    from sklearn.preprocessing import TargetEncoder

    leaky["code"] = TargetEncoder(target_type="binary").fit(ds.X[["code"]], ds.y).transform(ds.X[["code"]])[:, 0]
    from sklearn.linear_model import LogisticRegression

    assert cross_val_score(LogisticRegression(), leaky[["x", "code"]], ds.y, cv=folds, scoring="roc_auc").mean() > 0.6
