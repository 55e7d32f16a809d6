"""Target transforms whose inverse stays finite (tuner.target_transforms): inside the training
targets' range they are scikit-learn's; outside it the inverse clips instead of giving NaN / inf."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import PowerTransformer

from tuner.target_transforms import BoundedLog1p, BoundedYeoJohnson

from export_helpers import regression_frame


def _skewed(n=200, seed=0):
    return np.exp(np.random.default_rng(seed).normal(1.0, 1.2, size=(n, 1)))


def test_yeo_johnson_is_sklearns_inside_the_training_range_and_clipped_outside():
    y = _skewed()
    ours, theirs = BoundedYeoJohnson().fit(y), PowerTransformer(method="yeo-johnson").fit(y)
    t = ours.transform(y)
    np.testing.assert_array_equal(t, theirs.transform(y))
    np.testing.assert_allclose(ours.inverse_transform(t), y, rtol=1e-9)
    wild = np.array([[t.min() - 50.0], [t.max() + 50.0], [t.max() + 1e6]])
    with pytest.warns(UserWarning, match="NaN"):
        assert not np.isfinite(theirs.inverse_transform(wild)).all()  # what failed trials before
    back = ours.inverse_transform(wild)
    assert np.isfinite(back).all()
    np.testing.assert_allclose(back.ravel(), [y.min(), y.max(), y.max()], rtol=1e-9)


def test_log1p_is_log1p_inside_the_training_range_and_clipped_outside():
    y = _skewed()
    ours = BoundedLog1p().fit(y)
    np.testing.assert_array_equal(ours.transform(y), np.log1p(y))
    np.testing.assert_allclose(ours.inverse_transform(np.log1p(y)), y, rtol=1e-12)
    back = ours.inverse_transform(np.array([[-30.0], [800.0]]))
    assert np.isfinite(back).all()
    np.testing.assert_allclose(back.ravel(), [y.min(), y.max()], rtol=1e-12)


@pytest.mark.parametrize("target", ["yeo_johnson", "log"])
def test_a_wildly_extrapolating_model_predicts_finite_values_within_the_targets(target):
    """A barely regularised lasso on degree-2 features, asked about rows far from its training
    rows: the predictions stay finite, inside the training targets' range (the fold no longer fails)."""
    from tuner.data import prepare
    from tuner.estimator import build_estimator, space_context
    from tuner.evaluation import fit_quietly
    from tuner.study import make_config

    frame = regression_frame()
    ds = prepare(frame, "price")
    config = make_config(ds, run="x", metric=None, models=["lasso"], cv=2, seed=0)
    est = build_estimator(config, "lasso", {"alpha": 1e-6, "prep_poly": True, "prep_target": target},
                          space_context(config, 1, n_rows=len(ds.X)))
    fit_quietly(est, ds.X, ds.y)
    far = ds.X.head(20).copy()
    far[["a", "b", "c", "d"]] = far[["a", "b", "c", "d"]] * 40.0
    pred = est.predict(far)
    assert np.isfinite(pred).all()
    assert pred.min() >= ds.y.min() * (1 - 1e-9) and pred.max() <= ds.y.max() * (1 + 1e-9)
    assert np.ptp(pred) > 0  # clipped where it extrapolates, not a constant


def test_a_fitted_pipeline_with_them_survives_the_artifact_round_trip(tmp_path):
    from tuner import artifact
    from tuner.data import prepare
    from tuner.estimator import build_estimator, space_context
    from tuner.evaluation import fit_quietly
    from tuner.study import make_config

    frame = regression_frame()
    ds = prepare(frame, "price")
    config = make_config(ds, run="x", metric=None, models=["lasso"], cv=2, seed=0)
    for target in ("yeo_johnson", "log"):
        est = build_estimator(config, "lasso", {"alpha": 1e-3, "prep_target": target},
                              space_context(config, 1, n_rows=len(ds.X)))
        fit_quietly(est, ds.X, ds.y)
        folder = tmp_path / target
        folder.mkdir()
        info = artifact._write_pipeline(est, folder)
        assert info["format"] == "skops"  # the classes are trusted, so no pickle fallback
        loaded = artifact._load_pipeline(folder, {"pipeline": info}, trust_pickle=False)
        np.testing.assert_array_equal(loaded.predict(ds.X), est.predict(ds.X))
