"""Export a fitted pipeline to ONNX, verified against the native model before it is written.

Converting is :mod:`tuner.deploy.onnx_convert` (skl2onnx for the scikit-learn parts,
onnxmltools for the XGBoost booster, :mod:`tuner.deploy.onnx_custom` for the
preprocessing steps without a stock converter (the imputer with indicator, the category encoders,
the quantile clip), :mod:`tuner.deploy.onnx_target_inverse` for a regression target transform). This module checks ONNX Runtime's outputs against
the native pipeline's on a sample of training rows plus rows with unseen and missing
values, and writes ``model.onnx`` only when they agree within the tolerances below.

ONNX model contract: one input per column, named as the column, shape ``[N, 1]``:
``float`` for numeric columns (missing = NaN), ``string`` for categorical ones
(missing = ``""``). Outputs: ``label`` (class code 0..K-1, ``classes[code]`` in the model
card) and ``probabilities`` ``[N, K]`` for classification; ``prediction`` ``[N, 1]`` for
regression. A calibrated model (the card's ``calibration``) has its map in the graph
(``tuner.deploy.onnx_calibration``): ``probabilities`` are the calibrated ones. A binary model with a
decision threshold (the card's ``decision``) has it in the graph: ``label`` is 1 where
``probabilities[:, 1]`` reaches it, as the native model's labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tuner.deploy.artifact.layout import ONNX_FILE, installed_versions, missing_extra
from tuner.deploy.onnx_calibration import with_calibration
from tuner.deploy.onnx_convert import OPSET, convert, input_spec, onnx_feeds
from tuner.deploy.onnx_custom import NotConvertible
from tuner.deploy.onnx_ensemble import convert_ensemble
from tuner.errors import TunerError
from tuner.models import calibrated
from tuner.models.ensemble import WeightedEnsemble

# The ONNX model must reproduce the native predictions on this many training rows ...
VERIFY_ROWS = 1000
# ... with probabilities within PROBA_ATOL, regression values within VALUE_RTOL * (1 + |value|),
PROBA_ATOL = 1e-4
VALUE_RTOL = 1e-4
# ... and the same label, except where the native top two probabilities are within this margin
# (a tie that float32 arithmetic may break the other way).
TIE_MARGIN = 2e-4


def require_onnx() -> None:
    """Raise the error naming the ``onnx`` extra when a package it installs is missing."""
    for module, package in (("onnx", "onnx"), ("skl2onnx", "skl2onnx"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(module)
        except ImportError:
            raise missing_extra(package, "onnx") from None


def with_threshold(onx, cut: float):
    """``onx`` whose ``label`` output is ``probabilities[:, 1] >= cut`` (a binary model's decision threshold)."""
    from onnx import TensorProto, helper

    graph = onx.graph
    for node in graph.node:
        node.output[:] = ["label_most_probable" if o == "label" else o for o in node.output]
    graph.initializer.extend([helper.make_tensor("threshold_column", TensorProto.INT64, [], [1]),
                              helper.make_tensor("threshold", TensorProto.FLOAT, [], [float(cut)])])
    graph.node.extend([
        helper.make_node("Gather", ["probabilities", "threshold_column"], ["positive_probability"], axis=1),
        helper.make_node("GreaterOrEqual", ["positive_probability", "threshold"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["label"], to=TensorProto.INT64),
    ])
    return onx


def _threshold(card: dict) -> float | None:
    return (card.get("decision") or {}).get("threshold") if card["task"] == "binary" else None


def verify(onnx_bytes: bytes, fitted, card: dict, X: pd.DataFrame) -> dict:
    """Compare ONNX Runtime with the native pipeline on ``X`` (fitted representation)."""
    import onnxruntime as ort

    from tuner.evaluation.cross_validation import predict_outputs

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, onnx_feeds(X, card["schema"]))))
    codes, proba = predict_outputs(fitted, X, card["task"], len(card["classes"]))
    report = {"rows": int(len(X))}
    if card["task"] == "regression":
        diff = np.abs(got["prediction"].reshape(-1).astype(float) - codes)
        allowed = VALUE_RTOL * (1.0 + np.abs(codes))
        report.update(max_abs_diff=float(diff.max()), max_rel_diff=float((diff / (1.0 + np.abs(codes))).max()),
                      tolerance=f"|onnx - native| <= {VALUE_RTOL:g} * (1 + |native|)",
                      passed=bool(np.all(diff <= allowed)))
        return report
    p = np.asarray(got["probabilities"], dtype=float)
    if p.shape != proba.shape:
        report.update(passed=False, problem=f"ONNX probabilities have shape {p.shape}, native {proba.shape}")
        return report
    diff = np.abs(p - proba)
    top2 = np.sort(proba, axis=1)[:, -2:]
    tie = (top2[:, 1] - top2[:, 0]) < TIE_MARGIN
    cut = _threshold(card)
    if cut is not None:  # the labels at the model's decision threshold, ties at the cut
        from tuner.evaluation.threshold import labels as labels_at

        codes, tie = labels_at(proba[:, 1], cut), np.abs(proba[:, 1] - cut) < TIE_MARGIN
    labels = np.asarray(got["label"]).reshape(-1).astype(int)
    mismatched = labels != codes
    report.update(
        max_abs_proba_diff=float(diff.max()), labels_equal=int((~mismatched).sum()),
        label_mismatches_at_ties=int((mismatched & tie).sum()),
        tolerance=f"labels equal (except native top-2 margin < {TIE_MARGIN:g}); |Δ probability| <= {PROBA_ATOL:g}",
        passed=bool(diff.max() <= PROBA_ATOL and not np.any(mismatched & ~tie)),
    )
    return report


def verification_rows(X: pd.DataFrame, schema: dict, n: int = VERIFY_ROWS) -> pd.DataFrame:
    """A seeded sample of training rows, plus copies with unseen and missing categories / numbers."""
    sample = X.sample(n=n, random_state=0) if len(X) > n else X
    edge = sample.head(10).copy()
    for c in schema["categorical"]:
        edge[c] = ["never seen in training", np.nan] * 5
    odd = sample.head(10).copy()
    for c in schema["numeric"]:
        odd[c] = np.nan
    return pd.concat([sample, edge, odd], ignore_index=True)


def write_onnx(fitted, card: dict, X_train: pd.DataFrame, folder) -> dict:
    """Convert, verify on a sample of the training rows, write ``model.onnx``; the card's ``onnx`` entry."""
    require_onnx()
    versions = installed_versions(("onnx", "skl2onnx", "onnxmltools", "onnxruntime"))
    model = calibrated.unwrap(fitted)
    try:
        onx = convert_ensemble(model, card) if isinstance(model, WeightedEnsemble) else convert(model, card)
    except NotConvertible as exc:
        return {"status": "not converted", "reason": f"{card['family']}: {exc}", "versions": versions}
    mapped = (card.get("calibration") or {}) if card["task"] != "regression" else {}
    if mapped.get("method"):
        onx = with_calibration(onx, mapped["method"], mapped["parameters"])
    if _threshold(card) is not None:
        onx = with_threshold(onx, _threshold(card))
    data = onx.SerializeToString()
    sample = verification_rows(X_train, card["schema"])
    try:
        report = verify(data, fitted, card, sample)
    except Exception as exc:  # ONNX Runtime refused the graph: report it, keep the native artifact
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return {"status": "not converted", "reason": f"{card['family']}: ONNX Runtime cannot run the converted graph: {first}",
                "versions": versions}
    if not report.get("passed"):
        return {"status": "failed verification", "reason": f"{card['family']}: ONNX predictions differ from the native "
                "model beyond the tolerance; model.onnx not written", "verification": report, "versions": versions}
    Path(folder, ONNX_FILE).write_bytes(data)
    return {
        "status": "verified", "file": ONNX_FILE, "opset": OPSET, "inputs": input_spec(card["schema"]),
        "outputs": ([f"label (class code; classes[code] in this card{_label_rule(card)})", "probabilities [N, K]"]
                    if card["task"] != "regression" else ["prediction [N, 1]"]),
        "verification": report, "versions": versions,
    }


def _label_rule(card: dict) -> str:
    cut = _threshold(card)
    return "" if cut is None else f"; 1 where probabilities[:, 1] >= {cut:.6g}, the decision threshold"


def check_loaded(model, X: pd.DataFrame | None = None) -> dict:
    """Re-verify the ``model.onnx`` of a loaded artifact on rows ``X`` (raw input, any order)."""
    path = model.path / ONNX_FILE
    if not path.exists():
        raise TunerError(f"{model.path} has no {ONNX_FILE}; export with --onnx")
    Xc, _ = model.prepare(X)
    return verify(path.read_bytes(), model.pipeline, model.card, Xc)


__all__ = ["write_onnx", "convert", "verify", "onnx_feeds", "input_spec", "require_onnx", "NotConvertible",
           "check_loaded"]
