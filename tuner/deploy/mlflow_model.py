"""An exported model folder is also an MLflow model: ``MLmodel`` with a ``python_function`` flavour
whose loader is tuner's own, so ``mlflow.pyfunc.load_model(dir)`` and ``mlflow models serve -m dir``
work on it.

Why tuner's own loader (``loader_module: tuner.deploy.mlflow_model``, :func:`_load_pyfunc`, the
entry point MLflow's format defines for such modules): the model loads through :func:`tuner.load`,
so the file checksums, the skops allow-list and the input checks apply as in ``tuner predict``.
Writing the folder needs no MLflow (plain YAML); only loading it through MLflow does.

What MLflow's ``predict`` returns: a DataFrame with ``prediction`` (labels as in the training data,
or values) and, for classification, one ``proba_<class>`` column per class.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
PYTHON_ENV = "python_env.yaml"
LOADER = "tuner.deploy.mlflow_model"


def input_columns(card: dict) -> list[dict]:
    """The inputs in MLflow's column-spec form (numbers ``double``, categories ``string``, all optional)."""
    inputs = [{"type": "double", "name": c, "required": False} for c in card["schema"]["numeric"]]
    return inputs + [{"type": "string", "name": c, "required": False} for c in card["schema"]["categorical"]]


def signature(card: dict) -> dict:
    """MLflow's signature: the outputs only. The inputs are checked by tuner's own loader against the
    card's schema (the same checks as ``tuner predict``): MLflow enforcing an input schema refuses an
    int64 column for a ``double`` one, which would turn away most tables of counts; the input columns
    are listed in the MLmodel's metadata (``tuner_inputs``) instead."""
    label = "double" if card["task"] == "regression" else (
        "long" if all(isinstance(c, int) and not isinstance(c, bool) for c in card["classes"]) else "string")
    outputs = [{"type": label, "name": "prediction", "required": True}]
    outputs += [{"type": "double", "name": f"proba_{c}", "required": True} for c in card.get("classes") or []]
    return {"inputs": None, "outputs": json.dumps(outputs), "params": None}


def write(folder: Path, card: dict) -> dict:
    """Write ``MLmodel``, ``requirements.txt`` and ``python_env.yaml`` into ``folder``; the card's entry."""
    import yaml

    versions = card.get("versions") or {}
    python = versions.get("python") or ".".join(map(str, sys.version_info[:3]))
    requirements = tuner_requirement(versions.get("tuner"))
    requirements += [f"{name}=={v}" for name, v in versions.items() if name not in ("python", "tuner")]
    Path(folder, REQUIREMENTS).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    Path(folder, PYTHON_ENV).write_text(yaml.safe_dump(
        {"python": python, "build_dependencies": ["pip"], "dependencies": [f"-r {REQUIREMENTS}"]}), encoding="utf-8")
    mlmodel = {
        "artifact_path": "model",
        "flavors": {"python_function": {"loader_module": LOADER, "python_version": python,
                                        "env": {"virtualenv": PYTHON_ENV}}},
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": signature(card),
        "metadata": {"tuner_inputs": input_columns(card), "tuner_family": card.get("family"), "tuner_run": card.get("run")},
    }
    Path(folder, MLMODEL).write_text(yaml.safe_dump(mlmodel, sort_keys=False), encoding="utf-8")
    return {"file": MLMODEL, "flavor": "python_function", "loader_module": LOADER,
            "files": [MLMODEL, REQUIREMENTS, PYTHON_ENV]}


def tuner_requirement(version: str | None, direct_url: dict | None = None) -> list[str]:
    """The requirements line(s) that install this tuner where the model is loaded: tuner is not on
    a package index, so where it was installed from (its PEP 610 ``direct_url.json``) says how.

    - from a Git URL: ``tuner @ git+<url>@<commit>``, the exact commit;
    - from a wheel or archive file, or a local folder (``pip install -e .`` of a clone): ``tuner @ file:///...``,
      preceded by a comment that the path exists on this machine only;
    - from an index (no ``direct_url.json``): ``tuner==<version>``.
    """
    direct = _direct_url() if direct_url is None else direct_url
    url = (direct or {}).get("url")
    if not url:
        return [f"tuner=={version}" if version else "tuner"]
    vcs = direct.get("vcs_info")
    if vcs:
        revision = vcs.get("commit_id") or vcs.get("requested_revision")
        return [f"tuner @ {vcs.get('vcs', 'git')}+{url}" + (f"@{revision}" if revision else "")]
    line = f"tuner @ {url}"
    if url.startswith("file:"):
        return ["# tuner was installed from a file on the exporting machine: elsewhere, point this line at "
                "a copy of the same version" + (f" ({version})" if version else ""), line]
    return [line]


def _direct_url() -> dict | None:
    """The installed tuner's ``direct_url.json`` (PEP 610), or None when installed from an index.
    Every distribution named tuner on the path is asked: a source checkout's ``tuner.egg-info`` in
    the working directory carries none and may come first."""
    from importlib.metadata import distributions

    for dist in distributions(name="tuner"):
        text = dist.read_text("direct_url.json")
        if text:
            try:
                return json.loads(text)
            except ValueError:
                return None
    return None


class TunerPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: a loaded tuner model behind MLflow's ``predict``."""

    def __init__(self, model):
        self.model = model

    def predict(self, model_input, params=None):
        import pandas as pd

        result = self.model.predict_batch(model_input, proba=self.model.is_classifier)
        frame = pd.DataFrame({"prediction": result.predictions})
        if result.probabilities is not None:
            for i, column in enumerate(self.model.proba_columns):
                frame[column] = result.probabilities[:, i]
        return frame

    def get_raw_model(self):
        return self.model


def _load_pyfunc(path: str) -> TunerPyfunc:
    """MLflow's entry point for a ``loader_module``: load the folder through :func:`tuner.load`."""
    from tuner.deploy.artifact import load

    return TunerPyfunc(load(path))


__all__ = ["write", "signature", "input_columns", "TunerPyfunc", "MLMODEL"]
