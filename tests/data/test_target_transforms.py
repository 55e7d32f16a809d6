"""Target transforms whose inverse stays finite (tuner.data.target_transforms): scikit-learn's
wherever that is finite; where it is not, the inverse of the nearest end of the training range."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.preprocessing import PowerTransformer

from export_helpers import regression_frame
from tuner.data.target_transforms import BoundedLog1p, BoundedYeoJohnson


def _skewed(n=200, seed=0):
    return np.exp(np.random.default_rng(seed).normal(1.0, 1.2, size=(n, 1)))


def test_yeo_johnson_is_sklearns_where_that_is_finite_and_the_nearest_end_elsewhere():
    y = _skewed()
    ours, theirs = BoundedYeoJohnson().fit(y), PowerTransformer(method="yeo-johnson").fit(y)
    t = ours.transform(y)
    np.testing.assert_array_equal(t, theirs.transform(y))
    np.testing.assert_allclose(ours.inverse_transform(t), y, rtol=1e-9)
    wild = np.array([[t.min() - 0.3], [t.max() + 0.3], [t.min() - 50.0], [t.max() + 50.0], [t.max() + 1e6]])
    with pytest.warns(UserWarning, match="NaN"), np.errstate(all="ignore"):
        plain = theirs.inverse_transform(wild).ravel()
    finite = np.isfinite(plain)
    assert finite[:2].all() and not finite.all()  # a little outside: defined; far outside: what failed trials
    back = ours.inverse_transform(wild).ravel()
    assert np.isfinite(back).all()
    np.testing.assert_array_equal(back[finite], plain[finite])  # extrapolation left alone
    ends = np.where(wild.ravel() < t.min(), y.min(), y.max())
    np.testing.assert_allclose(back[~finite], ends[~finite], rtol=1e-9)


def test_log1p_is_log1p_and_expm1_where_that_is_finite_and_the_nearest_end_elsewhere():
    y = _skewed()
    ours = BoundedLog1p().fit(y)
    np.testing.assert_array_equal(ours.transform(y), np.log1p(y))
    np.testing.assert_allclose(ours.inverse_transform(np.log1p(y)), y, rtol=1e-12)
    back = ours.inverse_transform(np.array([[-30.0], [np.log1p(y.max()) + 1.0], [800.0]])).ravel()
    np.testing.assert_array_equal(back[:2], np.expm1([-30.0, np.log1p(y.max()) + 1.0]))  # beyond the targets: kept
    np.testing.assert_allclose(back[2], y.max(), rtol=1e-12)  # expm1 overflows: the largest target


@pytest.mark.parametrize("target", ["yeo_johnson", "log"])
def test_a_wildly_extrapolating_model_predicts_finite_values(target):
    """A barely regularised lasso on degree-2 features, asked about rows far from its training
    rows: where scikit-learn's inverse gives NaN / inf the prediction is the nearest training
    end; elsewhere it is the plain transform's (the fold no longer fails)."""
    from sklearn.compose import TransformedTargetRegressor

    from tuner.data.dataset import prepare
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.search.run_setup import make_config

    frame = regression_frame()
    ds = prepare(frame, "price")
    config = make_config(ds, run="x", metric=None, models=["lasso"], cv=2, seed=0)
    est = build_estimator(config, "lasso", {"alpha": 1e-6, "prep_poly": True, "prep_target": target},
                          space_context(config, 1, n_rows=len(ds.X)))
    fit_quietly(est, ds.X, ds.y)
    far = ds.X.head(20).copy()
    far[["a", "b", "c", "d"]] = far[["a", "b", "c", "d"]] * 1000.0
    pred = est.predict(far)
    assert np.isfinite(pred).all()
    plain = est.regressor_.predict(far)  # on the transformed scale
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PowerTransformer's "... are NaN"
        stock = (np.expm1(plain) if target == "log" else
                 PowerTransformer.inverse_transform(est.transformer_, plain.reshape(-1, 1)).ravel())
    bad = ~np.isfinite(stock)
    assert bad.any()  # the case that failed folds
    np.testing.assert_array_equal(pred[~bad], stock[~bad])
    ends = np.where(plain < est.transformer_.low_[0], ds.y.min(), ds.y.max())
    np.testing.assert_allclose(pred[bad], ends[bad], rtol=1e-9)
    assert isinstance(est, TransformedTargetRegressor) and not bad.all()  # extrapolation kept where it is defined


def test_a_fitted_pipeline_with_them_survives_the_artifact_round_trip(tmp_path):
    from tuner.data.dataset import prepare
    from tuner.deploy.artifact.reader import load_pipeline
    from tuner.deploy.artifact.writer import write_pipeline
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.search.run_setup import make_config

    frame = regression_frame()
    ds = prepare(frame, "price")
    config = make_config(ds, run="x", metric=None, models=["lasso"], cv=2, seed=0)
    for target in ("yeo_johnson", "log"):
        est = build_estimator(config, "lasso", {"alpha": 1e-3, "prep_target": target},
                              space_context(config, 1, n_rows=len(ds.X)))
        fit_quietly(est, ds.X, ds.y)
        folder = tmp_path / target
        folder.mkdir()
        info = write_pipeline(est, folder)
        assert info["format"] == "skops"  # the classes are trusted, so no pickle fallback
        loaded = load_pipeline(folder, {"pipeline": info}, trust_pickle=False)
        np.testing.assert_array_equal(loaded.predict(ds.X), est.predict(ds.X))
