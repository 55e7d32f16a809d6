"""The model artifact on disk: write it, load it back safely, predict with it.

Layout of an artifact folder::

    model_card.json   what the model is (task, schema, classes, leaderboard row, params,
                      versions, data fingerprint) and the SHA-256 of every other file
    pipeline.skops    preprocessing + model in skops' secure format (no pickle)
    model.ubj         xgboost only: the booster in XGBoost's own format
    model.keras       keras_mlp only: the network in Keras's own format
    model.onnx        with ``--onnx``: the whole pipeline for ONNX Runtime

Loading verifies every checksum, refuses any object type outside an allow-list
(scikit-learn, imbalanced-learn, XGBoost and this project's estimators), and warns
when the libraries differ from the ones the model was exported with.

Modules: ``layout`` (file names, format, errors, versions), ``trust`` (the allow-list),
``writer``, ``reader``, ``loaded_model`` (prediction). The names below are the
artifact's API, re-exported here so callers import them from ``tuner.deploy.artifact``.
"""

from tuner.deploy.artifact.layout import (
    CARD,
    FORMAT,
    FORMAT_VERSION,
    KERAS_FILE,
    ONNX_FILE,
    ArtifactError,
    VersionWarning,
    installed_versions,
    libraries_for,
    missing_extra,
    model_holder,
    sha256_file,
)
from tuner.deploy.artifact.loaded_model import LoadedModel, Prediction
from tuner.deploy.artifact.reader import check_versions, load, read_card, verify_files
from tuner.deploy.artifact.writer import copy, write

__all__ = [
    "load", "LoadedModel", "Prediction", "ArtifactError", "VersionWarning", "write", "copy", "CARD",
    "FORMAT", "FORMAT_VERSION", "KERAS_FILE", "ONNX_FILE", "installed_versions", "libraries_for",
    "missing_extra", "model_holder", "sha256_file", "check_versions", "read_card", "verify_files",
]
