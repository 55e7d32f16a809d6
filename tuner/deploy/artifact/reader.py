"""Load a model artifact safely: check the card, every file's size and SHA-256, the
object types of the skops file against the allow-list, and the library versions.

Why: a model folder may come from anywhere; nothing in it is run or unpickled before
these checks pass (a pickle only with an explicit ``trust_pickle``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from tuner import model_types
from tuner.deploy.artifact.layout import (
    CARD,
    ENSEMBLE_FORMAT_VERSION,
    FORMAT,
    ArtifactError,
    VersionWarning,
    installed_versions,
    model_holder,
    sha256_file,
)
from tuner.deploy.artifact.loaded_model import LoadedModel
from tuner.deploy.artifact.trust import is_trusted_type, skops_io
from tuner.errors import TunerError
from tuner.models import calibrated
from tuner.models.ensemble import WeightedEnsemble


def read_card(path: Path) -> dict:
    """The model card of the folder ``path``, checked to be one this tuner can read."""
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
    if int(card.get("format_version", 0)) > ENSEMBLE_FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by a newer tuner (format {card['format_version']}); upgrade tuner")
    return card


def verify_files(path: Path, card: dict) -> None:
    """Every file the card lists exists with its recorded size and SHA-256."""
    files = card.get("files") or {}
    pipeline = card.get("pipeline") or {}
    if any(p.get("file") not in files for p in pipeline.get("members") or [pipeline]):
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


def load_pipeline(path: Path, card: dict, trust_pickle: bool, trust_modules: tuple[str, ...] = (),
                  old_paths: dict | None = None):
    """The fitted pipeline from its skops file (allow-listed types, and those of the packages in
    ``trust_modules``) or, with ``trust_pickle``, its pickle. ``old_paths`` collects the old type
    names the file records (``tuner.model_types.OLD_PATHS``) → their names now."""
    info = card["pipeline"]
    f = path / info["file"]
    if info.get("format") == "skops":
        sio = skops_io()
        try:
            untrusted = sio.get_untrusted_types(file=f)
        except Exception as exc:
            raise ArtifactError(f"model file {f} cannot be read ({type(exc).__name__}: {exc}); export the model again") from None
        refused = [t for t in untrusted if not is_trusted_type(t, trust_modules)]
        if refused:
            named = info.get("trusted_modules") or []
            hint = (f"; they come from the plug-in package(s) {', '.join(named)} it was exported with: if you "
                    f"installed and trust them, allow them with --trust-module {' --trust-module '.join(named)} "
                    "(tuner.load(..., trust_modules=[...]))" if named else "")
            raise ArtifactError(
                f"model file {f} holds object types tuner does not trust: {', '.join(refused[:5])}; "
                f"refusing to load it{hint}"
            )
        if old_paths is not None:
            old_paths.update(model_types.old_paths_in(untrusted))
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


def attach_native(fitted, path: Path, card: dict) -> None:
    """Put the model saved in its own library's format (XGBoost, Keras) back into the pipeline."""
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


def load(path, *, trust_pickle: bool = False, trust_modules=()) -> LoadedModel:
    """Load an artifact written by ``tuner export``; see :class:`LoadedModel`. ``trust_modules``:
    packages whose classes may be loaded beyond the allow-list (a plug-in family's)."""
    trust_modules = tuple(trust_modules or ())
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
    pipeline = card["pipeline"]
    old: dict[str, str] = {}
    if pipeline.get("format") == "ensemble":  # every member as a model of its own (writer.write)
        members = [load_member(path, {"pipeline": info}, trust_pickle, trust_modules, old)
                   for info in pipeline["members"]]
        fitted = WeightedEnsemble.from_fitted(members, pipeline["weights"], card["task"], pipeline.get("classes"))
    else:
        fitted = load_member(path, card, trust_pickle, trust_modules, old)
    fitted = calibrated.wrap(fitted, card.get("calibration"), len(card.get("classes") or ()))
    if old:
        warnings.warn(f"model folder {path} names tuner's classes by old paths ({', '.join(sorted(old))}); they "
                      f"load until tuner {model_types.REMOVED_IN}: export the model again to write the stable "
                      f"names ({', '.join(sorted(set(old.values())))})", FutureWarning, stacklevel=2)
    return LoadedModel(path, card, fitted, version_notes=diffs)


def load_member(path: Path, card: dict, trust_pickle: bool, trust_modules: tuple[str, ...] = (),
                old_paths: dict | None = None):
    """The fitted pipeline ``card["pipeline"]`` describes, its native model attached."""
    fitted = load_pipeline(path, card, trust_pickle, trust_modules, old_paths)
    attach_native(fitted, path, card)
    return fitted
