"""Convert a fitted pipeline (preprocessing + model) to ONNX and check it against the native model.

skl2onnx converts the scikit-learn parts, onnxmltools the XGBoost booster. Two of our
preprocessing steps have no stock converter and are rewritten for the conversion only
(the native artifact is untouched):

* the numeric imputer with missing-value indicators becomes an ONNX ``Imputer`` plus
  ``IsNaN`` columns;
* the categorical imputer reads a missing category as the empty string (ONNX string
  tensors have no NaN).

A target transform (log or Yeo-Johnson) is appended to the graph as its inverse.

ONNX model contract: one input per column, named as the column, shape ``[N, 1]``:
``float`` for numeric columns (missing = NaN), ``string`` for categorical ones
(missing = ``""``). Outputs: ``label`` (class code 0..K-1, ``classes[code]`` in the model
card) and ``probabilities`` ``[N, K]`` for classification; ``prediction`` ``[N, 1]`` for
regression.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd

from tuner.deploy.artifact import ONNX_FILE, missing_extra, model_holder
from tuner.errors import TunerError

# The ONNX model must reproduce the native predictions on this many training rows ...
VERIFY_ROWS = 1000
# ... with probabilities within PROBA_ATOL, regression values within VALUE_RTOL * (1 + |value|),
PROBA_ATOL = 1e-4
VALUE_RTOL = 1e-4
# ... and the same label, except where the native top two probabilities are within this margin
# (a tie that float32 arithmetic may break the other way).
TIE_MARGIN = 2e-4
OPSET = {"": 17, "ai.onnx.ml": 3}


class NotConvertible(Exception):
    """This pipeline has a part without an ONNX converter (the message says which)."""


def require_onnx() -> None:
    for module, package in (("onnx", "onnx"), ("skl2onnx", "skl2onnx"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(module)
        except ImportError:
            raise missing_extra(package, "onnx") from None


# --------------------------------------------------------------------------- custom pieces

_STANDINS: dict[str, type] = {}


def _standin(kind: str, **fitted):
    """A conversion-only estimator of class ``kind`` carrying ``fitted`` attributes (never run)."""
    from sklearn.base import BaseEstimator, TransformerMixin

    if kind not in _STANDINS:
        def transform(self, X):  # pragma: no cover - converted to ONNX, never called
            raise NotImplementedError

        _STANDINS[kind] = type(kind, (TransformerMixin, BaseEstimator), {"transform": transform, "__module__": __name__})
    est = _STANDINS[kind]()
    for key, value in fitted.items():
        setattr(est, key, value)
    return est


def _impute_with_indicator(imputer):
    """Stand-in for a fitted numeric ``SimpleImputer(add_indicator=True)``: Imputer + IsNaN columns."""
    features = imputer.indicator_.features_ if imputer.add_indicator and imputer.indicator_ is not None else []
    return _standin("TunerImputeWithIndicator", statistics_=np.asarray(imputer.statistics_, dtype=float),
                    features_=np.asarray(features, dtype=np.int64))


def _encode_categories(pipeline):
    """Stand-in for the fitted categorical pipeline (constant imputer + one-hot / ordinal encoder).

    Per column: a table category -> output index, the index for an unknown category, and the
    number of output columns (one-hot) or 0 (ordinal: the index itself is the output).
    """
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    imputer, encoder = pipeline.steps[0][1], pipeline.steps[-1][1]
    fill = str(imputer.fill_value)
    columns = []
    for j, cats in enumerate(encoder.categories_):
        cats = [str(c) for c in cats]
        if isinstance(encoder, OneHotEncoder):
            outputs = [str(c) for c in encoder._compute_transformed_categories(j)]
            infrequent = outputs.index("infrequent_sklearn") if "infrequent_sklearn" in outputs else None
            table = {c: outputs.index(c) if c in outputs else infrequent for c in cats}
            unknown = infrequent if infrequent is not None else -1
            width = len(outputs)
        elif isinstance(encoder, OrdinalEncoder):
            table = {c: i for i, c in enumerate(cats)}
            unknown, width = int(encoder.unknown_value), 0
        else:
            raise NotConvertible(f"no ONNX form for the categorical encoder {type(encoder).__name__}")
        missing = table.get(fill, unknown)
        table[""] = missing  # ONNX inputs carry a missing category as ""
        columns.append({"table": table, "unknown": unknown, "width": width})
    return _standin("TunerEncodeCategories", columns_=columns)


def _impute_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType

    op = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(op.statistics_) + len(op.features_)])


def _encode_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType

    op = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, sum(c["width"] or 1 for c in op.columns_)])


def _encode_convert(scope, operator, container):
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    op = operator.raw_operator
    X = concatenate_variables(scope, operator.inputs, container)
    parts = []
    for j, col in enumerate(op.columns_):
        idx = scope.get_unique_variable_name(f"cat{j}_index")
        container.add_initializer(idx, TensorProto.INT64, [1], [j])
        value = scope.get_unique_variable_name(f"cat{j}_value")
        container.add_node("Gather", [X, idx], [value], axis=1, name=scope.get_unique_operator_name("Gather"))
        keys = list(col["table"])
        code = scope.get_unique_variable_name(f"cat{j}_code")
        container.add_node("LabelEncoder", [value], [code], op_domain="ai.onnx.ml", op_version=2,
                           name=scope.get_unique_operator_name("LabelEncoder"),
                           keys_strings=keys, values_int64s=[int(col["table"][k]) for k in keys],
                           default_int64=int(col["unknown"]))
        out = scope.get_unique_variable_name(f"cat{j}_out")
        if col["width"]:
            rng = scope.get_unique_variable_name(f"cat{j}_range")
            container.add_initializer(rng, TensorProto.INT64, [1, col["width"]], list(range(col["width"])))
            hot = scope.get_unique_variable_name(f"cat{j}_hot")
            container.add_node("Equal", [code, rng], [hot])
            container.add_node("Cast", [hot], [out], to=TensorProto.FLOAT)
        else:
            container.add_node("Cast", [code], [out], to=TensorProto.FLOAT)
        parts.append(out)
    container.add_node("Concat", parts, [operator.outputs[0].full_name], axis=1)


def _impute_convert(scope, operator, container):
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    op = operator.raw_operator
    X = concatenate_variables(scope, operator.inputs, container)
    imputed = scope.get_unique_variable_name("imputed")
    container.add_node("Imputer", [X], [imputed], op_domain="ai.onnx.ml",
                       name=scope.get_unique_operator_name("Imputer"),
                       imputed_value_floats=op.statistics_.astype(np.float32).tolist(),
                       replaced_value_float=float("nan"))
    if len(op.features_) == 0:
        container.add_node("Identity", [imputed], [operator.outputs[0].full_name])
        return
    isnan = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", [X], [isnan])
    idx = scope.get_unique_variable_name("indicator_columns")
    container.add_initializer(idx, TensorProto.INT64, [len(op.features_)], op.features_.tolist())
    picked = scope.get_unique_variable_name("indicator_bool")
    container.add_node("Gather", [isnan, idx], [picked], axis=1)
    indicator = scope.get_unique_variable_name("indicator")
    container.add_node("Cast", [picked], [indicator], to=TensorProto.FLOAT)
    container.add_node("Concat", [imputed, indicator], [operator.outputs[0].full_name], axis=1)


_REGISTERED = False


def _register_converters() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(type(_standin("TunerImputeWithIndicator")), "TunerImputeWithIndicator",
                                _impute_shape, _impute_convert)
    update_registered_converter(type(_standin("TunerEncodeCategories")), "TunerEncodeCategories",
                                _encode_shape, _encode_convert)
    try:
        import xgboost as xgb
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError:
        pass
    else:
        update_registered_converter(
            xgb.XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
            convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
        update_registered_converter(xgb.XGBRegressor, "XGBoostXGBRegressor",
                                    calculate_linear_regressor_output_shapes, convert_xgboost)
    _REGISTERED = True


# --------------------------------------------------------------------------- rewriting

def _rewrite_prep(prep):
    """A copy of the fitted ColumnTransformer whose parts all have ONNX converters."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    prep = copy.copy(prep)
    rebuilt = []
    for name, trans, cols in prep.transformers_:
        if name == "cat" and isinstance(trans, Pipeline):
            trans = _encode_categories(trans)
        elif name == "num" and isinstance(trans, Pipeline):
            steps = [(n, _impute_with_indicator(s) if isinstance(s, SimpleImputer) else s) for n, s in trans.steps]
            trans = copy.copy(trans)
            trans.steps = steps
        rebuilt.append((name, trans, cols))
    prep.transformers_ = rebuilt
    return prep


def _target_inverse(fitted):
    """How to map the inner regressor's output back to the target scale, or None."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import FunctionTransformer, PowerTransformer

    from tuner.data.target_transforms import BoundedLog1p

    if not isinstance(fitted, TransformedTargetRegressor):
        return None
    t = fitted.transformer_
    # (low, high): where the inverse is not finite, it is taken of the value clipped to these (tuner.data.target_transforms)
    bounds = (float(t.low_[0]), float(t.high_[0])) if hasattr(t, "low_") else None
    if isinstance(t, BoundedLog1p) or (isinstance(t, FunctionTransformer) and t.inverse_func is np.expm1):
        return ("expm1", bounds)
    if isinstance(t, PowerTransformer) and t.method == "yeo-johnson" and len(t.lambdas_) == 1:
        mean, scale = (0.0, 1.0)
        if t.standardize:
            mean, scale = float(t._scaler.mean_[0]), float(t._scaler.scale_[0])
        return ("yeo_johnson", bounds, float(t.lambdas_[0]), mean, scale)
    raise NotConvertible(f"the target transform {t!r} has no ONNX form here")


def _contains_nystroem(model) -> bool:
    from sklearn.kernel_approximation import Nystroem

    inner = [model]
    for cal in getattr(model, "calibrated_classifiers_", []):
        inner.append(cal.estimator)
    return any(isinstance(s, Nystroem) for m in inner for _, s in getattr(m, "steps", []))


def convertible_pipeline(fitted):
    """(plain scikit-learn Pipeline to convert, target inverse or None)."""
    from sklearn.pipeline import Pipeline

    inverse = _target_inverse(fitted)
    holder = model_holder(fitted)
    steps = []
    for name, step in holder.steps:
        if hasattr(step, "fit_resample"):  # resampling happens during fit only
            continue
        if name == "prep":
            step = _rewrite_prep(step)
        steps.append((name, step))
    model = steps[-1][1]
    if _contains_nystroem(model):
        raise NotConvertible(
            "the SVM's approximate RBF kernel (Nystroem, chosen above 5000 rows) has no ONNX converter"
        )
    if type(model).__module__.startswith("search_spaces"):
        raise NotConvertible(
            f"the {type(model).__name__} network has no converter wired in yet (its preprocessing converts; "
            "the Keras part would need tf2onnx)"
        )
    pipe = Pipeline(steps)
    return pipe, inverse


# --------------------------------------------------------------------------- converting

def input_spec(schema: dict) -> list[dict]:
    spec = [{"name": c, "type": "float", "shape": [None, 1], "missing": "NaN"} for c in schema["numeric"]]
    spec += [{"name": c, "type": "string", "shape": [None, 1], "missing": ""} for c in schema["categorical"]]
    return spec


def onnx_feeds(X: pd.DataFrame, schema: dict) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs for rows in the fitted representation (see the module contract)."""
    feeds = {c: X[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in schema["numeric"]}
    for c in schema["categorical"]:
        feeds[c] = X[c].fillna("").to_numpy(dtype=object).astype(str).reshape(-1, 1)
    return feeds


def convert(fitted, card: dict):
    """The ONNX ModelProto of ``fitted``; raises NotConvertible naming the part that is not supported."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_converters()
    pipe, inverse = convertible_pipeline(fitted)
    schema = card["schema"]
    types = [(c, FloatTensorType([None, 1])) for c in schema["numeric"]]
    types += [(c, StringTensorType([None, 1])) for c in schema["categorical"]]
    classification = card["task"] != "regression"
    options = {id(pipe.steps[-1][1]): {"zipmap": False}} if classification else None
    try:
        with warnings.catch_warnings():  # converters read attributes scikit-learn has deprecated (SVC.probA_)
            warnings.simplefilter("ignore", FutureWarning)
            onx = convert_sklearn(pipe, initial_types=types, target_opset=OPSET, options=options)
    except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NotConvertible(f"skl2onnx cannot convert this pipeline: {first}") from exc
    return _name_outputs(onx, classification, inverse)


def _name_outputs(onx, classification: bool, inverse):
    """Rename outputs to label/probabilities or prediction, appending the target inverse."""
    from onnx import TensorProto, helper

    graph = onx.graph
    outs = [o.name for o in graph.output]
    nodes, new_outputs = [], []
    if classification:
        if outs[:2] == ["label", "probabilities"]:
            return onx
        label, proba = outs[0], outs[1]
        nodes.append(helper.make_node("Identity", [label], ["label"]))
        nodes.append(helper.make_node("Identity", [proba], ["probabilities"]))
        new_outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                       helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])]
    else:
        value = outs[0]
        if inverse is not None:
            value, extra = _inverse_nodes(value, inverse)
            nodes += extra
        nodes.append(helper.make_node("Identity", [value], ["prediction"]))
        new_outputs = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None, 1])]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend(new_outputs)
    return onx


def _const(name: str, value: float):
    from onnx import TensorProto, helper

    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value]))


def _inverse_nodes(y: str, inverse) -> tuple[str, list]:
    """Nodes computing the inverse target transform of ``y``; returns (output name, nodes).

    With bounds (``tuner.data.target_transforms``): where the inverse is not finite, the inverse
    of ``y`` clipped to the training range instead."""
    from onnx import helper

    bounds = inverse[1]
    out, n = _inverse_chain(y, inverse, "tt_")
    if bounds is None:
        return out, n
    n += [_const("tc_low", bounds[0]), _const("tc_high", bounds[1]),
          helper.make_node("Clip", [y, "tc_low", "tc_high"], ["tc_y"])]
    clipped, more = _inverse_chain("tc_y", inverse, "tc_")
    n += more + [helper.make_node("IsNaN", [out], ["tc_nan"]), helper.make_node("IsInf", [out], ["tc_inf"]),
                 helper.make_node("Or", ["tc_nan", "tc_inf"], ["tc_bad"]),
                 helper.make_node("Where", ["tc_bad", clipped, out], ["tt_finite"])]
    return "tt_finite", n


def _inverse_chain(y: str, inverse, p: str) -> tuple[str, list]:
    """The inverse transform's nodes, their names prefixed with ``p``."""
    from onnx import helper

    n = []
    if inverse[0] == "expm1":
        n += [_const(p + "one", 1.0), helper.make_node("Exp", [y], [p + "exp"]),
              helper.make_node("Sub", [p + "exp", p + "one"], [p + "out"])]
        return p + "out", n
    _, _, lam, mean, scale = inverse
    # undo the standardisation, then the Yeo-Johnson power transform (PowerTransformer._yeo_johnson_inverse_transform)
    n += [_const(p + "scale", scale), _const(p + "mean", mean), _const(p + "one", 1.0), _const(p + "zero", 0.0),
          helper.make_node("Mul", [y, p + "scale"], [p + "scaled"]),
          helper.make_node("Add", [p + "scaled", p + "mean"], [p + "x"])]
    if abs(lam) < 1e-8:  # x >= 0: exp(x) - 1
        n += [helper.make_node("Exp", [p + "x"], [p + "e"]), helper.make_node("Sub", [p + "e", p + "one"], [p + "pos"])]
    else:  # (x * lam + 1) ** (1 / lam) - 1
        n += [_const(p + "lam", lam), _const(p + "invlam", 1.0 / lam),
              helper.make_node("Mul", [p + "x", p + "lam"], [p + "xl"]),
              helper.make_node("Add", [p + "xl", p + "one"], [p + "b"]),
              helper.make_node("Pow", [p + "b", p + "invlam"], [p + "p"]),
              helper.make_node("Sub", [p + "p", p + "one"], [p + "pos"])]
    if abs(lam - 2) < 1e-8:  # x < 0: 1 - exp(-x)
        n += [helper.make_node("Neg", [p + "x"], [p + "nx"]), helper.make_node("Exp", [p + "nx"], [p + "en"]),
              helper.make_node("Sub", [p + "one", p + "en"], [p + "neg"])]
    else:  # 1 - (-(2 - lam) * x + 1) ** (1 / (2 - lam))
        n += [_const(p + "2ml", -(2.0 - lam)), _const(p + "inv2ml", 1.0 / (2.0 - lam)),
              helper.make_node("Mul", [p + "x", p + "2ml"], [p + "nxl"]),
              helper.make_node("Add", [p + "nxl", p + "one"], [p + "nb"]),
              helper.make_node("Pow", [p + "nb", p + "inv2ml"], [p + "np"]),
              helper.make_node("Sub", [p + "one", p + "np"], [p + "neg"])]
    n += [helper.make_node("GreaterOrEqual", [p + "x", p + "zero"], [p + "ge"]),
          helper.make_node("Where", [p + "ge", p + "pos", p + "neg"], [p + "out"])]
    return p + "out", n


# --------------------------------------------------------------------------- verifying

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
    from pathlib import Path

    require_onnx()
    from tuner.deploy.artifact import installed_versions

    versions = installed_versions(("onnx", "skl2onnx", "onnxmltools", "onnxruntime"))
    try:
        onx = convert(fitted, card)
    except NotConvertible as exc:
        return {"status": "not converted", "reason": f"{card['family']}: {exc}", "versions": versions}
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
        "outputs": (["label (class code; classes[code] in this card)", "probabilities [N, K]"]
                    if card["task"] != "regression" else ["prediction [N, 1]"]),
        "verification": report, "versions": versions,
    }


def check_loaded(model, X: pd.DataFrame | None = None) -> dict:
    """Re-verify the ``model.onnx`` of a loaded artifact on rows ``X`` (raw input, any order)."""
    path = model.path / ONNX_FILE
    if not path.exists():
        raise TunerError(f"{model.path} has no {ONNX_FILE}; export with --onnx")
    Xc, _ = model.prepare(X)
    return verify(path.read_bytes(), model.pipeline, model.card, Xc)


__all__ = ["write_onnx", "convert", "verify", "onnx_feeds", "input_spec", "require_onnx", "NotConvertible",
           "check_loaded"]
