"""TunerClassifier / TunerRegressor as scikit-learn estimators (issue #22).

scikit-learn's own estimator checks run over both with a tiny budget (one cheap family, two
trials, two folds); the few that cannot pass are listed with the reason.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import tuner
from tuner.storage.runs import open_storage, require_config

CHEAP = dict(trials=2, cv=2, n_jobs=1, seed=0)

_EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "passes its own train/test splits as cv=[...]: tuner makes the run's folds itself (groups / time "
        "aware, shared by every family), so cv is a number of folds"),
}


def _expected_failures(estimator):
    return dict(_EXPECTED)


@parametrize_with_checks([tuner.TunerClassifier(models="logistic_regression", **CHEAP),
                          tuner.TunerRegressor(models="lasso", **CHEAP)],
                         expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check, monkeypatch):
    # the array-API check (NumPy inputs with array-API dispatch on) runs only with this set;
    # scikit-learn reads it when the check runs
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_fitted_attributes_describe_the_search():
    X, y = make_classification(160, 6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    clf = tuner.TunerClassifier(models=["logistic_regression", "random_forest"], **CHEAP).fit(frame, y)
    assert list(clf.classes_) == [0, 1] and clf.n_features_in_ == 6
    assert list(clf.feature_names_in_) == list(frame.columns)
    assert clf.best_model_name_ == clf.leaderboard_["model"][0]
    assert clf.best_params_ == json.loads(clf.leaderboard_["params"][0])  # the winner's own parameters
    results = clf.cv_results_
    trials = results["trial_number"] >= 0  # the run's ensemble is one more entry (trial number -1)
    assert sum(results["state"][trials] == "complete") == 4  # two complete trials per family (+ any pruned)
    assert set(results["model"][trials]) == {"logistic_regression", "random_forest"}
    assert set(results["model"][~trials]) <= {"ensemble"}
    assert results["rank_test_score"][clf.best_index_] == 1
    assert clf.best_score_ == pytest.approx(clf.leaderboard_["roc_auc_mean"][0])
    assert results["params"][clf.best_index_] == {"model": clf.best_model_name_, **clf.best_params_}
    assert np.array_equal(clf.predict(frame), clf.best_estimator_.predict(clf.model_.prepare(frame)[0]))
    assert clf.predict_proba(frame).shape == (160, 2)
    assert clone(clf).get_params() == clf.get_params()


def test_inside_a_pipeline_and_cross_val_score():
    X, y = make_regression(120, 4, noise=5.0, random_state=0)
    reg = make_pipeline(StandardScaler(), tuner.TunerRegressor(models="lasso", **CHEAP))
    scores = cross_val_score(reg, X, y, cv=3)
    assert len(scores) == 3 and scores.min() > 0.9
    model = tuner.TunerRegressor(models="lasso", **CHEAP).fit(X, y)
    assert model.metric_ == "rmse" and model.best_score_ < 0  # greater is better: minus rmse


def test_groups_and_sample_weight_reach_the_run(tmp_path):
    X, y = make_classification(120, 4, random_state=1)
    groups = np.repeat(np.arange(30), 4)
    weights = np.where(np.arange(120) % 5 == 0, 0.0, 1.0)
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    clf = tuner.TunerClassifier(models="logistic_regression", storage=url, run="kept", **CHEAP)
    clf.fit(X, y, groups=groups, sample_weight=weights)
    config = require_config(open_storage(url, create=False), "kept")  # storage= keeps the run
    assert config.groups and config.weights and config.n_groups == 30
    with pytest.raises(ValueError, match="weight 0 in every row"):
        tuner.TunerClassifier(models="logistic_regression", **CHEAP).fit(X, y, sample_weight=(y == 1) * 1.0)


def test_polars_and_pyarrow_tables_are_accepted(tmp_path):
    polars = pytest.importorskip("polars")
    pyarrow = pytest.importorskip("pyarrow")
    X, y = make_classification(100, 3, n_informative=2, n_redundant=0, random_state=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=np.where(y == 1, "yes", "no"))
    board = tuner.tune(polars.from_pandas(frame), target="label", models="logistic_regression", trials=1, cv=2,
                       storage=f"sqlite:///{tmp_path / 't.db'}", run="pl")
    assert board["status"][0] == "ok"
    model = tuner.best_model(run="pl", storage=f"sqlite:///{tmp_path / 't.db'}", data=frame)
    features = frame.drop(columns=["label"])
    expected = model.predict(features)
    assert np.array_equal(model.predict(pyarrow.Table.from_pandas(features)), expected)
    assert np.array_equal(model.predict(polars.from_pandas(features)), expected)
    clf = tuner.TunerClassifier(models="logistic_regression", **CHEAP).fit(polars.from_pandas(features), y)
    assert list(clf.feature_names_in_) == ["a", "b", "c"]
    assert np.array_equal(clf.predict(pyarrow.Table.from_pandas(features)), clf.predict(features))


def test_export_and_best_model_from_python(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    X, y = make_classification(100, 3, n_informative=2, n_redundant=0, random_state=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    tuner.tune(frame, target="label", models="logistic_regression", trials=1, cv=2, storage=url, run="df")
    with pytest.raises(tuner.TunerError, match="in-memory DataFrame"):  # importance needs the rows again
        tuner.export(str(tmp_path / "m"), run="df", storage=url, importance=True)
    # the run kept its final model: exporting it needs no rows
    assert tuner.export(str(tmp_path / "m0"), run="df", storage=url).card["final_fit"]["winner"] == "logistic_regression"
    exported = tuner.export(str(tmp_path / "m"), run="df", storage=url, data=frame)
    in_memory = tuner.best_model(run="df", storage=url, data=frame)
    assert exported.path == tmp_path / "m"
    rows = frame.drop(columns=["label"])
    assert np.array_equal(exported.predict(rows), in_memory.predict(rows))
    assert "logistic_regression" in in_memory._repr_html_() and "a (number)" in exported._repr_html_()
    with pytest.raises(tuner.TunerError, match="not the data of run 'df'"):
        tuner.export(str(tmp_path / "m2"), run="df", storage=url, data=frame.iloc[:50], importance=True)
