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
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.data import inputs
from tuner.data.dataset import Schema
from tuner.errors import TunerError

CARD = "model_card.json"
FORMAT = "tuner-model"
FORMAT_VERSION = 1
PIPELINE_SKOPS = "pipeline.skops"
PIPELINE_PICKLE = "pipeline.joblib"
XGBOOST_FILE = "model.ubj"
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"

# Libraries whose versions are recorded in the card and compared on load.
LIBRARIES = ("tuner", "scikit-learn", "numpy", "scipy", "pandas", "imbalanced-learn", "skops")
FAMILY_LIBRARIES = {"xgboost": ("xgboost",), "keras_mlp": ("keras", "tensorflow")}
# Object types a skops file may hold: classes from these packages ...
_TRUSTED_PACKAGES = ("sklearn", "imblearn", "xgboost", "search_spaces", "tuner.models")
# ... and these functions (score functions of univariate selection, target transforms).
_TRUSTED_FUNCTIONS = frozenset({
    "numpy.dtype", "numpy.log1p", "numpy.expm1",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
})


class ArtifactError(TunerError):
    """The folder is not a model artifact, or a file in it is damaged or untrusted."""


class VersionWarning(UserWarning):
    """The model was exported with different library versions than the ones installed."""


def missing_extra(package: str, extra: str) -> TunerError:
    return TunerError(f"this needs the optional package {package!r}: pip install 'tuner[{extra}]'")


# --------------------------------------------------------------------------- helpers

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def libraries_for(family: str) -> tuple[str, ...]:
    return LIBRARIES + FAMILY_LIBRARIES.get(family, ())


def installed_versions(names=LIBRARIES) -> dict[str, str]:
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


def _native_kind(model) -> str | None:
    module = type(model).__module__
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith(("search_spaces", "tuner.models")) and hasattr(model, "model_bytes"):
        return "keras"
    return None


# ... and tuner's own transformers that a pipeline may hold.
_TRUSTED_TUNER_TYPES = frozenset({
    "tuner.data.features.DatetimeFeatures", "tuner.data.target_transforms.BoundedLog1p",
    "tuner.data.target_transforms.BoundedYeoJohnson",
    # where model folders written before the package layout recorded them (tuner/_compat re-exports)
    "tuner.features.DatetimeFeatures", "tuner.target_transforms.BoundedLog1p",
    "tuner.target_transforms.BoundedYeoJohnson",
})


def _is_trusted_type(name: str) -> bool:
    if name in _TRUSTED_FUNCTIONS or name in _TRUSTED_TUNER_TYPES:
        return True
    module, _, attr = name.rpartition(".")
    if not module or not (module + ".").startswith(tuple(pkg + "." for pkg in _TRUSTED_PACKAGES)):
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type)


def _skops():
    try:
        import skops.io as sio
    except ImportError:  # pragma: no cover - skops is a core dependency
        raise missing_extra("skops", "secure") from None
    return sio


# --------------------------------------------------------------------------- writing

def write(fitted, card: dict, out: Path, *, extra=None) -> dict:
    """Write ``fitted`` and ``card`` to the folder ``out`` (replaced as a whole at the end).

    ``extra(tmp_dir, card)`` may add files (ONNX) before the card is written. Returns the card.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"--out {out} is a file; give a folder for the model")
    if out.exists() and any(out.iterdir()) and not (out / CARD).exists():
        raise ArtifactError(f"--out {out} is a folder that holds other files; give a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        card = dict(card)
        card["pipeline"] = _write_pipeline(fitted, tmp)
        if extra is not None:
            extra(tmp, card)
        card["files"] = {
            p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(tmp.iterdir()) if p.is_file()
        }
        (tmp / CARD).write_text(json.dumps(card, indent=2, default=_json_default) + "\n", encoding="utf-8")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def _replace_dir(new: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)
    os.chmod(out, 0o755)


def _write_pipeline(fitted, folder: Path) -> dict:
    """Write the pipeline (native model split off where the family has a native format)."""
    from sklearn.base import clone

    holder = model_holder(fitted)
    name, model = holder.steps[-1]
    kind = _native_kind(model)
    info: dict[str, Any] = {}
    placeholder = model
    if kind == "xgboost":
        model.save_model(str(folder / XGBOOST_FILE))
        placeholder = clone(model)  # same class and hyperparameters, no booster
        info["native_model"] = {"file": XGBOOST_FILE, "format": "xgboost-ubj"}
    elif kind == "keras":
        model.save_keras(str(folder / KERAS_FILE))
        placeholder = _without_network(model)
        info["native_model"] = {"file": KERAS_FILE, "format": "keras"}
    holder.steps[-1] = (name, placeholder)
    try:
        sio = _skops()
        path = folder / PIPELINE_SKOPS
        try:
            import zipfile

            sio.dump(fitted, path, compression=zipfile.ZIP_DEFLATED)
            untrusted = sorted(sio.get_untrusted_types(file=path))
            refused = [t for t in untrusted if not _is_trusted_type(t)]
        except Exception as exc:  # skops cannot represent some object: fall back, and say so
            refused = [f"{type(exc).__name__}: {exc}"]
        if not refused:
            info.update(file=PIPELINE_SKOPS, format="skops", trusted_types=untrusted)
        else:
            import joblib

            path.unlink(missing_ok=True)
            joblib.dump(fitted, folder / PIPELINE_PICKLE)
            info.update(file=PIPELINE_PICKLE, format="joblib-pickle",
                        why_not_skops=f"types outside the skops allow-list: {', '.join(refused)[:500]}")
    finally:
        holder.steps[-1] = (name, model)
    return info


def _without_network(model):
    import copy

    twin = copy.copy(model)
    twin.__dict__ = {k: v for k, v in model.__dict__.items() if k != "model_"}
    return twin


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return str(v)


# --------------------------------------------------------------------------- loading

def read_card(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"model folder not found: {path}")
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a model folder; give the folder written by `tuner export --out DIR`")
    card_path = path / CARD
    if not card_path.exists():
        raise ArtifactError(f"{path} is not a tuner model folder (no {CARD}); create one with `tuner export --out {path}`")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{card_path} is damaged (not valid JSON: {exc}); export the model again") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ArtifactError(f"{card_path} is not a tuner model card; export the model again")
    if int(card.get("format_version", 0)) > FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by a newer tuner (format {card['format_version']}); upgrade tuner")
    return card


def verify_files(path: Path, card: dict) -> None:
    """Every file the card lists exists with its recorded size and SHA-256."""
    files = card.get("files") or {}
    if card.get("pipeline", {}).get("file") not in files:
        raise ArtifactError(f"{path / CARD} lists no checksum for the model file; export the model again")
    for name, meta in files.items():
        f = Path(path) / name
        if Path(name).name != name:
            raise ArtifactError(f"{path / CARD} names a file outside the model folder ({name!r})")
        if not f.is_file():
            raise ArtifactError(f"model file {f} is missing; copy the whole folder or export the model again")
        size = f.stat().st_size
        if size != meta.get("bytes"):
            raise ArtifactError(
                f"model file {f} is truncated or modified ({size} bytes, the card says {meta.get('bytes')}); "
                "export the model again"
            )
        if sha256_file(f) != meta.get("sha256"):
            raise ArtifactError(
                f"model file {f} is corrupted or was modified (SHA-256 differs from the model card); "
                "export the model again"
            )


def check_versions(card: dict) -> list[str]:
    """Libraries whose installed version differs from the exporting environment's."""
    recorded = card.get("versions") or {}
    now = installed_versions(tuple(k for k in recorded if k != "python"))
    diffs = []
    for name, then in recorded.items():
        current = now.get(name)
        if name == "python":
            then, current = ".".join(then.split(".")[:2]), ".".join(now["python"].split(".")[:2])
        if current is None:
            diffs.append(f"{name} {then} (not installed here)")
        elif current != then:
            diffs.append(f"{name} {then} (installed: {current})")
    return diffs


def _load_pipeline(path: Path, card: dict, trust_pickle: bool):
    info = card["pipeline"]
    f = path / info["file"]
    if info.get("format") == "skops":
        sio = _skops()
        try:
            untrusted = sio.get_untrusted_types(file=f)
        except Exception as exc:
            raise ArtifactError(f"model file {f} cannot be read ({type(exc).__name__}: {exc}); export the model again") from None
        refused = [t for t in untrusted if not _is_trusted_type(t)]
        if refused:
            raise ArtifactError(
                f"model file {f} holds object types tuner does not trust: {', '.join(refused[:5])}; "
                "refusing to load it"
            )
        try:
            return sio.load(f, trusted=untrusted)
        except Exception as exc:
            raise ArtifactError(f"model file {f} cannot be loaded ({type(exc).__name__}: {exc})") from None
    if info.get("format") == "joblib-pickle":
        if not trust_pickle:
            raise ArtifactError(
                f"{f} is a pickle, which runs code when loaded; load it only if it comes from a source you "
                "trust, with --trust-pickle (CLI) or tuner.load(..., trust_pickle=True)"
            )
        import joblib

        try:
            return joblib.load(f)
        except Exception as exc:
            raise ArtifactError(f"model file {f} cannot be loaded ({type(exc).__name__}: {exc})") from None
    raise ArtifactError(f"{path / CARD} names an unknown model format {info.get('format')!r}; upgrade tuner")


def _attach_native(fitted, path: Path, card: dict) -> None:
    native = card["pipeline"].get("native_model")
    if not native:
        return
    holder = model_holder(fitted)
    name, placeholder = holder.steps[-1]
    f = path / native["file"]
    try:
        if native["format"] == "xgboost-ubj":
            try:
                import xgboost  # noqa: F401
            except ImportError:
                raise TunerError("this model needs xgboost: pip install xgboost") from None
            placeholder.load_model(str(f))
        elif native["format"] == "keras":
            from tuner.models.keras_mlp import configure_tensorflow

            keras, _ = configure_tensorflow(1)
            placeholder.model_ = keras.saving.load_model(str(f), compile=False, safe_mode=True)
        else:
            raise ArtifactError(f"{path / CARD} names an unknown native model format {native['format']!r}")
    except TunerError:
        raise
    except Exception as exc:
        raise ArtifactError(f"model file {f} cannot be loaded ({type(exc).__name__}: {exc})") from None
    holder.steps[-1] = (name, placeholder)


def load(path, *, trust_pickle: bool = False) -> "LoadedModel":
    """Load an artifact written by ``tuner export``; see :class:`LoadedModel`."""
    path = Path(path)
    card = read_card(path)
    verify_files(path, card)
    diffs = check_versions(card)
    if diffs:
        warnings.warn(
            "the model was exported with other library versions: " + "; ".join(diffs)
            + ". Predictions may differ; re-export in this environment to be sure.",
            VersionWarning, stacklevel=2,
        )
    fitted = _load_pipeline(path, card, trust_pickle)
    _attach_native(fitted, path, card)
    return LoadedModel(path, card, fitted, version_notes=diffs)


# --------------------------------------------------------------------------- predicting

@dataclass
class Prediction:
    predictions: np.ndarray  # original labels (classification) or values (regression)
    probabilities: np.ndarray | None  # one column per class, in card order
    notes: list[str]


class LoadedModel:
    """A loaded artifact: ``predict(df)``, ``predict_proba(df)``, ``card``.

    Input is checked against the schema of the training data (see :mod:`tuner.data.inputs`).
    """

    def __init__(self, path: Path, card: dict, pipeline, version_notes: list[str] | None = None):
        self.path = Path(path)
        self.card = card
        self.pipeline = pipeline
        self.task: str = card["task"]
        self.family: str = card["family"]
        self.classes: list = list(card.get("classes") or [])
        self.schema = Schema.from_dict(card["schema"])
        self.version_notes = version_notes or []

    def __repr__(self) -> str:
        return f"<tuner model {self.family} ({self.task}, target {self.card['target']!r}) from {self.path}>"

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def proba_columns(self) -> list[str]:
        return [f"proba_{c}" for c in self.classes]

    def prepare(self, data, *, row_offset: int = 0) -> tuple[pd.DataFrame, list[str]]:
        """(features in the fitted representation, notes); raises ``InputError`` naming the column.

        ``data``: a DataFrame, a list of records (dicts keyed by column, each holding every
        column: null / None for a missing value) or anything ``pandas.DataFrame`` takes.
        """
        return inputs.coerce(self._frame(data), self.schema, row_offset=row_offset)

    def _frame(self, data) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            frame = data
        elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
            frame = inputs.records_frame(list(data), self.schema)
        else:
            try:
                frame = pd.DataFrame(data)
            except (TypeError, ValueError) as exc:
                raise inputs.InputError(f"cannot make a table of rows from a {type(data).__name__}: {exc}; "
                                        "pass a DataFrame or a list of records {column: value}") from None
        return frame.rename(columns=str)

    def predict_batch(self, data, *, proba: bool = False, row_offset: int = 0) -> Prediction:
        """Predictions (+ probabilities) and the notes about the input, without warnings.

        A row whose output is not a finite number (inputs far outside the training range can
        overflow a linear model) gets NaN as its prediction / probabilities, with a note.
        """
        X, notes = self.prepare(data, row_offset=row_offset)
        if len(X) == 0:
            empty = np.empty((0, len(self.classes))) if proba and self.is_classifier else None
            return Prediction(np.asarray([], dtype=float if not self.is_classifier else object), empty, notes)
        from sklearn import config_context

        from tuner.evaluation.cross_validation import predict_outputs

        # inputs.coerce already turned infinities into NaN (which the imputers handle); huge finite
        # values may still overflow inside the model: quietly, the rows are flagged below
        with config_context(assume_finite=True), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            codes, probabilities = predict_outputs(self.pipeline, X, self.task, len(self.classes))
        if not self.is_classifier:
            values = np.asarray(codes, dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():
                values = np.where(bad, np.nan, values)
                notes = notes + [_not_finite_note(bad, row_offset)]
            return Prediction(values, None, notes)
        probabilities = np.asarray(probabilities, dtype=float)
        bad_rows = ~np.isfinite(probabilities).all(axis=1)
        labels = np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=int)]
        if bad_rows.any():
            probabilities = np.where(bad_rows[:, None], np.nan, probabilities)
            labels[bad_rows] = None
            notes = notes + [_not_finite_note(bad_rows, row_offset)]
        elif all(isinstance(c, (int, float, bool)) for c in self.classes):
            labels = labels.astype(type(self.classes[0]) if len({type(c) for c in self.classes}) == 1 else object)
        return Prediction(labels, probabilities if proba else None, notes)

    def predict(self, data) -> np.ndarray:
        """Predicted labels (classification, as in the training data) or values (regression).

        Notes about the input (extra columns ignored, unseen categories, ...) are issued as
        :class:`tuner.data.inputs.InputWarning`; a problem that stops prediction raises ``InputError``.
        """
        result = self.predict_batch(data)
        _warn(result.notes)
        return result.predictions

    def predict_proba(self, data) -> pd.DataFrame:
        """One column ``proba_<class>`` per class, in the card's class order; index as the input's."""
        if not self.is_classifier:
            raise TunerError("predict_proba is for classification models; this one does regression")
        frame = self._frame(data)
        result = self.predict_batch(frame, proba=True)
        _warn(result.notes)
        return pd.DataFrame(result.probabilities, columns=self.proba_columns, index=frame.index)


def _not_finite_note(bad: np.ndarray, row_offset: int = 0) -> str:
    rows = np.flatnonzero(bad)
    shown = ", ".join(str(row_offset + int(i) + 1) for i in rows[:5]) + (" ..." if len(rows) > 5 else "")
    return (f"{len(rows)} row(s) have no prediction (the model's output is not a finite number; inputs far "
            f"outside the training range?): data row(s) {shown}")


def _warn(notes: list[str]) -> None:
    for text in notes:
        warnings.warn(text, inputs.InputWarning, stacklevel=3)


__all__ = ["load", "LoadedModel", "Prediction", "ArtifactError", "VersionWarning", "write", "CARD"]
