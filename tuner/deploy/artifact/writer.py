"""Write a model artifact: the fitted pipeline (native model files split off), optional
extra files, and the model card with every file's checksum.

Why: the folder is built in a temporary directory and swapped in as a whole, so a
crash or a full disk never leaves a half-written model where a complete one was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tuner.deploy.artifact.layout import (
    CARD,
    ENSEMBLE_FORMAT_VERSION,
    KERAS_FILE,
    PIPELINE_PICKLE,
    PIPELINE_SKOPS,
    XGBOOST_FILE,
    ArtifactError,
    model_holder,
    native_kind,
    sha256_file,
)
from tuner.deploy.artifact.trust import is_trusted_type, skops_io
from tuner.models import calibrated
from tuner.models.ensemble import WeightedEnsemble


def write(fitted, card: dict, out: Path, *, extra=None, trust_modules: tuple[str, ...] = ()) -> dict:
    """Write ``fitted`` and ``card`` to the folder ``out`` (replaced as a whole at the end).

    ``extra(tmp_dir, card)`` may add files (ONNX) before the card is written; ``trust_modules``:
    packages whose classes the user allows in the skops file (a plug-in family's). Returns the card.
    A calibrated model is written as the model under its map: the card's ``calibration`` holds the map.
    """
    fitted = calibrated.unwrap(fitted)

    def fill(tmp: Path, card: dict) -> None:
        if isinstance(fitted, WeightedEnsemble):  # each member as a model of its own, then the weights
            card["format_version"] = ENSEMBLE_FORMAT_VERSION
            card["pipeline"] = {
                "format": "ensemble", "weights": [float(w) for w in fitted.weights],
                "classes": None if not fitted.is_classifier else [int(c) for c in fitted.classes_],
                "members": [write_pipeline(m, tmp, prefix=f"member{i}_", trust_modules=trust_modules)
                            for i, m in enumerate(fitted.members_)],
            }
        else:
            card["pipeline"] = write_pipeline(fitted, tmp, trust_modules=trust_modules)

    return _assemble(out, card, fill, extra)


def copy(src: Path, card: dict, out: Path, *, extra=None) -> dict:
    """Write the artifact folder ``src`` (its files, as they are) to ``out`` with ``card``, replaced as
    a whole at the end like ``write``; ``extra(tmp_dir, card)`` may add files. Returns the card."""
    src = Path(src)

    def fill(tmp: Path, card: dict) -> None:
        for p in sorted(src.iterdir()):
            if p.is_file() and p.name != CARD:
                shutil.copy2(p, tmp / p.name)

    return _assemble(out, card, fill, extra)


def _assemble(out: Path, card: dict, fill, extra) -> dict:
    """A new folder beside ``out``: ``fill(tmp, card)`` and ``extra(tmp, card)`` put the files in, the
    card lists them with their hashes, then the folder replaces ``out`` as a whole (nothing half-written
    is left behind on an error)."""
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        card = dict(card)
        fill(tmp, card)
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


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"--out {out} is a file; give a folder for the model")
    if out.exists() and any(out.iterdir()) and not (out / CARD).exists():
        raise ArtifactError(f"--out {out} is a folder that holds other files; give a new or empty folder")


def _replace_dir(new: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)
    os.chmod(out, 0o755)


def write_pipeline(fitted, folder: Path, *, prefix: str = "", trust_modules: tuple[str, ...] = ()) -> dict:
    """Write the pipeline (native model split off where the family has a native format);
    ``prefix``: before every file name (an ensemble's members share the folder)."""
    from sklearn.base import clone

    holder = model_holder(fitted)
    name, model = holder.steps[-1]
    kind = native_kind(model)
    info: dict[str, Any] = {}
    placeholder = model
    if kind == "xgboost":
        model.save_model(str(folder / f"{prefix}{XGBOOST_FILE}"))
        placeholder = clone(model)  # same class and hyperparameters, no booster
        info["native_model"] = {"file": f"{prefix}{XGBOOST_FILE}", "format": "xgboost-ubj"}
    elif kind == "keras":
        model.save_keras(str(folder / f"{prefix}{KERAS_FILE}"))
        placeholder = _without_network(model)
        info["native_model"] = {"file": f"{prefix}{KERAS_FILE}", "format": "keras"}
    holder.steps[-1] = (name, placeholder)
    try:
        sio = skops_io()
        path = folder / f"{prefix}{PIPELINE_SKOPS}"
        try:
            import zipfile

            sio.dump(fitted, path, compression=zipfile.ZIP_DEFLATED)
            untrusted = sorted(sio.get_untrusted_types(file=path))
            refused = [t for t in untrusted if not is_trusted_type(t, trust_modules)]
        except Exception as exc:  # skops cannot represent some object: fall back, and say so
            refused = [f"{type(exc).__name__}: {exc}"]
        if not refused:
            info.update(file=path.name, format="skops", trusted_types=untrusted)
            allowed = sorted({m for m in trust_modules for t in untrusted if t.startswith(m + ".")})
            if allowed:  # the packages a loader must allow too (--trust-module)
                info["trusted_modules"] = allowed
        else:
            import joblib

            path.unlink(missing_ok=True)
            joblib.dump(fitted, folder / f"{prefix}{PIPELINE_PICKLE}")
            info.update(file=f"{prefix}{PIPELINE_PICKLE}", format="joblib-pickle",
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
