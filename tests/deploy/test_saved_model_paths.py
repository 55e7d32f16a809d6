"""Model folders keep loading across versions: tuner's classes are recorded under the stable names of
tuner/model_types.py, and folders that name them by old paths load, trusted, with a warning that says
until when (issue #34). The fixtures were written by tuner 0.1.0 (tests/fixtures/make_model_folders.py)."""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

import tuner
from tests.test_architecture import module_files
from tuner import model_types

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "model_folders"
# sklearn estimators of tuner's that a model folder never records by name
NOT_STORED = {
    "tuner.estimators.base._TunerEstimator", "tuner.estimators.base.TunerClassifier",
    "tuner.estimators.base.TunerRegressor",  # the user's scikit-learn API over tuner.tune, not a model part
    "tuner.models.ensemble.WeightedEnsemble",  # an ensemble folder stores its members, not the ensemble
    # stand-ins holding one fold's predictions for a user's scikit-learn scorer, never saved
    "tuner.evaluation.custom_metric._Predicted", "tuner.evaluation.custom_metric._PredictedClassifier",
    "tuner.evaluation.custom_metric._PredictedRegressor",
    "tuner.models.keras_mlp.estimator.KerasMLPBase",  # a base class
}


def _recorded_types(folder: Path) -> set[str]:
    names = set()
    for f in folder.glob("*.skops"):
        schema = zipfile.ZipFile(f).read("schema.json").decode()
        names |= {f"{m}.{c}" for c, m in re.findall(r'"__class__": "(\w+)",\s*"__module__": "([\w.]+)"', schema)}
    return names


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_a_folder_of_0_1_0_loads_warns_and_predicts_as_it_did(kind):
    folder = FIXTURES / "0.1.0" / kind
    X = pd.read_csv(FIXTURES / "0.1.0" / "X.csv")
    expected = pd.read_csv(FIXTURES / "0.1.0" / f"{kind}_expected.csv")
    with pytest.warns(FutureWarning, match=rf"old paths .*tuner\.data\..*until tuner {model_types.REMOVED_IN}"):
        model = tuner.load(folder)
    got = model.predict_proba(X).to_numpy() if kind == "binary" else model.predict(X)
    np.testing.assert_allclose(np.asarray(got, dtype=float).reshape(expected.shape), expected.to_numpy(), rtol=1e-6)


def test_the_fixtures_hold_tuners_classes_by_their_old_paths():
    recorded = _recorded_types(FIXTURES / "0.1.0" / "binary") | _recorded_types(FIXTURES / "0.1.0" / "regression")
    ours = {n for n in recorded if n.startswith(("tuner.", "search_spaces."))}
    assert ours and ours <= set(model_types.OLD_PATHS)  # each has a stable name now
    # ... the ensemble, the early-stopping XGBoost, HGB, dates, text, categories and both target transforms
    assert {n.rsplit(".", 1)[1] for n in ours} >= {"EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor",
                                                   "HGBClassifier", "HGBRegressor", "DatetimeFeatures",
                                                   "TextTokens", "CategoryCodes", "BoundedLog1p",
                                                   "BoundedYeoJohnson"}


def test_an_old_path_and_its_stable_name_are_the_same_class():
    for old, new in model_types.OLD_PATHS.items():
        module, _, name = old.rpartition(".")
        new_module, _, new_name = new.rpartition(".")
        if new_module == model_types.KERAS:
            continue  # importing it loads TensorFlow: tests/models/test_keras_mlp.py
        assert getattr(importlib.import_module(module), name) is getattr(importlib.import_module(new_module), new_name)


def test_every_estimator_class_of_tuner_is_pinned_to_a_stable_name():
    unpinned = []
    for module_name, path in module_files().items():
        if "keras" in module_name or module_name in ("tuner.features", "tuner.target_transforms"):
            continue  # Keras: pinned to tuner.models.keras_mlp (tests/models/test_keras_mlp.py); shims
        source = path.read_text()
        if "class " not in source or "BaseEstimator" not in source and "Classifier" not in source \
                and "Regressor" not in source and "Transformer" not in source:
            continue
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            defined = f"{cls.__module__}.{cls.__qualname__}"
            if not issubclass(cls, BaseEstimator) or getattr(module, name) is not cls:
                continue
            if inspect.getsourcefile(cls) != str(path) or f"{module_name}.{name}" in NOT_STORED:
                continue
            if defined not in model_types.stable_names():
                unpinned.append(f"{module_name}.{name} (recorded as {defined})")
    assert not unpinned, f"pin these in tuner/model_types.py: {unpinned}"


def test_a_folder_written_now_records_the_stable_names_and_loads_without_a_warning(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    frame = pd.read_csv(FIXTURES / "0.1.0" / "X.csv").assign(y=lambda d: (d["x"] > 0).map({True: "a", False: "b"}))
    tuner.tune(frame, target="y", models="hist_gradient_boosting", trials=1, cv=2, storage=storage, run="r", n_jobs=1)
    tuner.export(str(tmp_path / "m"), storage=storage, run="r", data=frame, n_jobs=1)
    recorded = {n for n in _recorded_types(tmp_path / "m") if n.startswith(("tuner.", "search_spaces."))}
    assert recorded and recorded <= model_types.stable_names()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        tuner.load(tmp_path / "m")
