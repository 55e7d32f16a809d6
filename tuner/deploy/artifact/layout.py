"""What a model artifact folder holds: file names, format version, the libraries whose
versions the card records, and the errors reading one raises.

Why a module of its own: writing (:mod:`~tuner.deploy.artifact.writer`), reading
(:mod:`~tuner.deploy.artifact.reader`) and the ONNX export all name the same files; the
names live here once.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from tuner.errors import TunerError

CARD = "model_card.json"
FORMAT = "tuner-model"
FORMAT_VERSION = 1
# An ensemble's card (its members' files side by side, ``pipeline.format == "ensemble"``): a
# tuner that reads only version 1 says to upgrade instead of failing on it.
ENSEMBLE_FORMAT_VERSION = 2
PIPELINE_SKOPS = "pipeline.skops"
PIPELINE_PICKLE = "pipeline.joblib"
XGBOOST_FILE = "model.ubj"
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"

# Libraries whose versions are recorded in the card and compared on load.
LIBRARIES = ("tuner", "scikit-learn", "numpy", "scipy", "pandas", "imbalanced-learn", "skops")
FAMILY_LIBRARIES = {"xgboost": ("xgboost",), "keras_mlp": ("keras", "tensorflow")}


class ArtifactError(TunerError):
    """The folder is not a model artifact, or a file in it is damaged or untrusted."""


class VersionWarning(UserWarning):
    """The model was exported with different library versions than the ones installed."""


def missing_extra(package: str, extra: str) -> TunerError:
    """The error naming the pip extra that installs ``package``."""
    return TunerError(f"this needs the optional package {package!r}: pip install 'tuner[{extra}]'")


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def libraries_for(family: str) -> tuple[str, ...]:
    """The libraries whose versions the card of a ``family`` model records."""
    return LIBRARIES + FAMILY_LIBRARIES.get(family, ())


def installed_versions(names=LIBRARIES) -> dict[str, str]:
    """Python's and the installed versions of ``names`` (the ones not installed are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def model_holder(fitted):
    """The Pipeline whose last step is the model (inside a TransformedTargetRegressor if any)."""
    inner = getattr(fitted, "regressor_", None)
    return inner if inner is not None else fitted


def native_kind(model) -> str | None:
    """Which native format the model's own library saves it in: "xgboost", "keras" or None."""
    module = type(model).__module__
    xgb = sys.modules.get("xgboost")  # an xgboost model means xgboost is imported
    if xgb is not None and isinstance(model, xgb.XGBModel):  # tuner.models' early-stopping subclasses too
        return "xgboost"
    if module.startswith(("search_spaces", "tuner.models")) and hasattr(model, "model_bytes"):
        return "keras"
    return None
