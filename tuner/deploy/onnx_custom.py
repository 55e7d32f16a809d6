"""ONNX forms of the three preprocessing steps that have no stock skl2onnx converter, and
the registration of every converter tuner adds (those three, and XGBoost's).

* a numeric ``SimpleImputer(add_indicator=True)`` becomes an ONNX ``Imputer`` plus
  ``IsNaN`` indicator columns;
* ``QuantileClip`` (``prep_clip``, tuner.data.outliers) becomes two ``Where`` nodes against its
  fitted per-column bounds (comparisons are false for NaN, so a missing value stays missing, as
  ``np.clip`` leaves it, whatever ONNX Runtime's ``Min`` / ``Max`` do with NaN);
* the categorical pipeline (constant imputer + one-hot / ordinal encoder) becomes one
  ``LabelEncoder`` per column, reading a missing category as the empty string (ONNX
  string tensors have no NaN).

Why stand-ins: the fitted steps are replaced, for the conversion only, by small
estimators carrying the fitted tables (the native artifact is untouched), so the
converters below need no knowledge of scikit-learn's internals at conversion time.
"""

from __future__ import annotations

import numpy as np


class NotConvertible(Exception):
    """This pipeline has a part without an ONNX converter (the message says which)."""


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


def impute_with_indicator(imputer):
    """Stand-in for a fitted numeric ``SimpleImputer(add_indicator=True)``: Imputer + IsNaN columns."""
    features = imputer.indicator_.features_ if imputer.add_indicator and imputer.indicator_ is not None else []
    return _standin("TunerImputeWithIndicator", statistics_=np.asarray(imputer.statistics_, dtype=float),
                    features_=np.asarray(features, dtype=np.int64))


def clip_at_quantiles(clip):
    """Stand-in for a fitted ``QuantileClip``: its bounds, a column without bounds (all missing when
    fitted: NaN) unbounded, as its ``transform`` reads it."""
    low = np.where(np.isnan(clip.low_), -np.inf, clip.low_)
    high = np.where(np.isnan(clip.high_), np.inf, clip.high_)
    return _standin("TunerQuantileClip", low_=np.asarray(low, dtype=float), high_=np.asarray(high, dtype=float))


def encode_categories(pipeline):
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


def _clip_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(operator.raw_operator.low_)])


def _clip_convert(scope, operator, container):
    """x > high -> high, then x < low -> low, per column (bounds broadcast as [1, n_columns])."""
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    op = operator.raw_operator
    X = concatenate_variables(scope, operator.inputs, container)
    width = len(op.low_)
    current = X
    for name, bound, compare in (("high", op.high_, "Greater"), ("low", op.low_, "Less")):
        edge = scope.get_unique_variable_name(f"clip_{name}")
        container.add_initializer(edge, TensorProto.FLOAT, [1, width], bound.astype(np.float32).tolist())
        beyond = scope.get_unique_variable_name(f"beyond_{name}")
        container.add_node(compare, [current, edge], [beyond], name=scope.get_unique_operator_name(compare))
        out = operator.outputs[0].full_name if name == "low" else scope.get_unique_variable_name("clipped_high")
        container.add_node("Where", [beyond, edge, current], [out], name=scope.get_unique_operator_name("Where"))
        current = out


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


def register_converters() -> None:
    """Register tuner's converters with skl2onnx (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    update_registered_converter(type(_standin("TunerImputeWithIndicator")), "TunerImputeWithIndicator",
                                _impute_shape, _impute_convert)
    update_registered_converter(type(_standin("TunerQuantileClip")), "TunerQuantileClip", _clip_shape, _clip_convert)
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
        from tuner.models.xgboost_early_stopping import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor

        update_registered_converter(  # cut to their best round when fitted: plain boosters
            EarlyStoppingXGBClassifier, "TunerEarlyStoppingXGBClassifier", calculate_linear_classifier_output_shapes,
            convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
        update_registered_converter(EarlyStoppingXGBRegressor, "TunerEarlyStoppingXGBRegressor",
                                    calculate_linear_regressor_output_shapes, convert_xgboost)
    _REGISTERED = True
