"""Model folders written before the package layout name tuner's transformers by their old
module paths (``tuner.target_transforms``, ``tuner.features``): they must still load, and be
trusted, through the re-export shims (issue #17), with a warning (tuner/model_types.py)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from tuner.data.features import DatetimeFeatures
from tuner.data.target_transforms import BoundedYeoJohnson
from tuner.deploy.artifact.reader import load_pipeline
from tuner.deploy.artifact.trust import is_trusted_type, skops_io


def _rename_modules(path: Path, renames: dict[str, str]) -> None:
    """Record each class of ``renames`` (class name → old module) under its old module."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    schema = members["schema.json"].decode()
    for cls, old in renames.items():
        pattern = re.compile(r'("__class__": "' + cls + r'",\s*"__module__": )"tuner\.model_types"')
        assert pattern.search(schema)
        schema = pattern.sub(lambda m: m.group(1) + f'"{old}"', schema)
    members["schema.json"] = schema.encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_pipeline_saved_under_the_old_module_paths_loads_and_predicts_the_same(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=60, freq="D").astype(str),
                      "x": rng.normal(size=60)})
    y = np.exp(X["x"].to_numpy()) + rng.normal(scale=0.1, size=60)
    model = TransformedTargetRegressor(
        regressor=Pipeline([
            ("prep", ColumnTransformer([("dates", DatetimeFeatures(), ["when"])], remainder="passthrough")),
            ("model", Ridge()),
        ]),
        transformer=BoundedYeoJohnson(),
    ).fit(X, y)
    sio = skops_io()
    path = tmp_path / "pipeline.skops"
    sio.dump(model, path)
    _rename_modules(path, {"BoundedYeoJohnson": "tuner.target_transforms", "DatetimeFeatures": "tuner.features"})

    untrusted = sio.get_untrusted_types(file=path)
    assert "tuner.target_transforms.BoundedYeoJohnson" in untrusted
    assert "tuner.features.DatetimeFeatures" in untrusted
    assert all(is_trusted_type(name) for name in untrusted)
    loaded = load_pipeline(tmp_path, {"pipeline": {"file": "pipeline.skops", "format": "skops"}}, False)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_an_old_path_that_is_not_a_shim_is_not_trusted():
    assert not is_trusted_type("tuner.preprocessing.Anything")
    assert not is_trusted_type("os.system")
