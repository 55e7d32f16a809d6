"""XGBoost early stopping on a share of the training rows (tuner.models.xgboost_early_stopping):
the booster ends at its best round, and what is saved, exported and converted to ONNX is that model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from export_helpers import fit_pipeline
from tuner.models.xgboost_early_stopping import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor


def _noisy(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, X[:, 0] + 0.5 * rng.normal(size=n)


def test_it_stops_at_the_best_round_and_keeps_only_those_trees():
    X, y = _noisy()
    model = EarlyStoppingXGBRegressor(n_estimators=1000, learning_rate=0.3, early_stopping_rounds=10,
                                      random_state=0).fit(X, y)
    assert model.stopped_at_ < 200  # a single useful column with noise: the validation loss turns early
    assert model.get_booster().num_boosted_rounds() == model.stopped_at_
    plain = EarlyStoppingXGBRegressor(n_estimators=model.stopped_at_, learning_rate=0.3, random_state=0)
    assert plain.fit(X, y).get_booster().num_boosted_rounds() == model.stopped_at_  # None: every round


def test_the_saved_model_predicts_as_the_fitted_one(tmp_path):
    X, y = _noisy()
    model = EarlyStoppingXGBRegressor(n_estimators=500, learning_rate=0.3, early_stopping_rounds=10).fit(X, y)
    model.save_model(str(tmp_path / "m.ubj"))
    loaded = clone(model)
    loaded.load_model(str(tmp_path / "m.ubj"))
    np.testing.assert_allclose(loaded.predict(X[:50]), model.predict(X[:50]), rtol=1e-6)


def test_a_classifier_with_weights_and_a_class_of_one_row_fits():
    X, y = _noisy(2000)
    labels = (y > 0).astype(int)
    labels[0] = 2  # one row of a third class: the validation split cannot be stratified
    model = EarlyStoppingXGBClassifier(n_estimators=200, early_stopping_rounds=10, random_state=0)
    model.fit(pd.DataFrame(X, columns=list("abcd")), labels, sample_weight=np.linspace(0.5, 2.0, len(labels)))
    assert model.predict_proba(X[:5]).shape == (5, 3)


def test_the_space_stops_early_from_its_row_threshold_on():
    from search_spaces import xgboost as space
    from search_spaces._base import SpaceContext

    def built(rows):
        ctx = SpaceContext(task="regression", n_rows=rows, n_features=4, n_jobs=1, seed=0)
        return space.build(space.defaults(ctx), ctx)

    assert built(space.EARLY_STOPPING_MIN_ROWS).early_stopping_rounds == space.EARLY_STOPPING_ROUNDS
    assert built(space.EARLY_STOPPING_MIN_ROWS - 1).early_stopping_rounds is None


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_an_early_stopped_pipeline_exports_to_onnx_with_parity(task, tmp_path):
    pytest.importorskip("onnxruntime")
    from tuner.deploy import onnx_export

    X, y = _noisy(2500, seed=1)
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["target"] = (y > 0).astype(int) if task == "binary" else y
    est, ds, card = fit_pipeline(frame, "target", "xgboost", {"n_estimators": 1000, "learning_rate": 0.3})
    model = est.steps[-1][1]
    assert model.stopped_at_ < 1000
    info = onnx_export.write_onnx(est, card, ds.X, tmp_path)
    assert info["status"] == "verified", info


def test_a_run_exports_the_early_stopped_model_and_loads_it_back(tmp_path):
    import json

    import tuner
    from export_helpers import make_run
    from tuner.deploy.export import export_model

    X, y = _noisy(2400, seed=2)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(kind=np.where(X[:, 1] > 0, "up", "down"), target=y)
    storage, _ = make_run(tmp_path, frame, "target", ["xgboost"], "es")
    export_model(tmp_path / "model", run="es", storage=storage, family="xgboost", importance=False)
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["pipeline"]["native_model"]["format"] == "xgboost-ubj"  # the booster in XGBoost's own file
    loaded = tuner.load(tmp_path / "model")
    xgb_model = loaded.pipeline.steps[-1][1]
    predictions = loaded.predict(frame.drop(columns=["target"]).head(20))
    assert len(predictions) == 20 and np.isfinite(np.asarray(predictions, dtype=float)).all()
    assert xgb_model.get_booster().num_boosted_rounds() < xgb_model.n_estimators  # cut at its best round
