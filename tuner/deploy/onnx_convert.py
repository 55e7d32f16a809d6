"""Convert a fitted pipeline (preprocessing + model) to an ONNX graph with the inputs and
outputs of the ONNX model contract (:mod:`tuner.deploy.onnx_export`).

The pipeline is rewritten for the conversion only: resampling steps dropped (they act
during fit: SMOTE, oversampling, and the dropping of outlying rows, ``prep_outlier_rows``),
preprocessing steps without a stock converter replaced by stand-ins (:mod:`tuner.deploy.onnx_custom`);
a part with no ONNX form raises :class:`~tuner.deploy.onnx_custom.NotConvertible` naming it.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd

from tuner.data.categories import CategoryCodes
from tuner.data.outliers import QuantileClip
from tuner.deploy.artifact.layout import model_holder, native_kind
from tuner.deploy.onnx_custom import (
    NotConvertible,
    clip_at_quantiles,
    encode_categories,
    impute_with_indicator,
    register_converters,
)
from tuner.deploy.onnx_target_inverse import inverse_nodes, target_inverse

OPSET = {"": 17, "ai.onnx.ml": 3}


def _rewrite_prep(prep):
    """A copy of the fitted ColumnTransformer whose parts all have ONNX converters."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    prep = copy.copy(prep)
    rebuilt = []
    text = [c for name, _, cols in prep.transformers_ if name == "text" for c in cols]
    if text:  # tuner.data.text.TextTokens: TF-IDF word features of free-text columns
        raise NotConvertible(f"the word features of the free-text column(s) {', '.join(map(str, text))} "
                             "(TF-IDF, tuner.data.text) have no ONNX converter wired in yet")
    for name, trans, cols in prep.transformers_:
        if name == "cat" and isinstance(trans, Pipeline) and any(isinstance(s, CategoryCodes) for _, s in trans.steps):
            raise NotConvertible(
                "its categorical columns reach the model as native categories (pandas category dtype, "
                "enable_categorical / categorical_features); the ONNX converters of XGBoost and "
                "HistGradientBoosting take numeric inputs only"
            )
        if name == "cat" and isinstance(trans, Pipeline):
            trans = encode_categories(trans)
        elif name == "num" and isinstance(trans, Pipeline):
            steps = [(n, impute_with_indicator(s) if isinstance(s, SimpleImputer)
                      else clip_at_quantiles(s) if isinstance(s, QuantileClip) else s) for n, s in trans.steps]
            trans = copy.copy(trans)
            trans.steps = steps
        rebuilt.append((name, trans, cols))
    prep.transformers_ = rebuilt
    return prep


def _contains_nystroem(model) -> bool:
    from sklearn.kernel_approximation import Nystroem

    inner = [model]
    for cal in getattr(model, "calibrated_classifiers_", []):
        inner.append(cal.estimator)
    return any(isinstance(s, Nystroem) for m in inner for _, s in getattr(m, "steps", []))


def convertible_pipeline(fitted):
    """(plain scikit-learn Pipeline to convert, target inverse or None)."""
    from sklearn.pipeline import Pipeline

    inverse = target_inverse(fitted)
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
    if native_kind(model) == "keras":
        raise NotConvertible(
            f"the {type(model).__name__} network has no converter wired in yet (its preprocessing converts; "
            "the Keras part would need tf2onnx)"
        )
    pipe = Pipeline(steps)
    return pipe, inverse


def input_spec(schema: dict) -> list[dict]:
    """The ONNX model's inputs as the model card lists them (one per column)."""
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

    register_converters()
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
        root = exc.__cause__ or exc.__context__
        if "Unable to create node" in first and root is not None:  # the node's attributes follow: name the cause
            first = f"{first.split(' with ')[0]} ({type(root).__name__}: {str(root).strip()[:200]})"
        model = type(pipe.steps[-1][1]).__name__
        raise NotConvertible(f"skl2onnx cannot convert this pipeline ({model}): {first}") from exc
    restore_input_names(onx, [name for name, _ in types])
    return name_outputs(onx, classification, inverse)


def restore_input_names(onx, names: list[str]) -> None:
    """Give the graph's inputs the column names again: skl2onnx makes them identifiers
    ('mean radius' -> 'mean_radius'), and the ONNX model contract names inputs as the columns."""
    rename = {i.name: name for i, name in zip(onx.graph.input, names) if i.name != name}
    if not rename:
        return
    for i in onx.graph.input:
        i.name = rename.get(i.name, i.name)
    for node in onx.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]


def name_outputs(onx, classification: bool, inverse):
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
            value, extra = inverse_nodes(value, inverse)
            nodes += extra
        nodes.append(helper.make_node("Identity", [value], ["prediction"]))
        new_outputs = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None, 1])]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend(new_outputs)
    return onx
