"""A regression pipeline's target transform (log or Yeo-Johnson), appended to the ONNX
graph as its inverse, so the ONNX model predicts on the target's own scale.

Why: skl2onnx converts the inner pipeline only; the inverse, including the clipping to
the training targets' range that keeps it finite (:mod:`tuner.data.target_transforms`),
is written here as ONNX nodes.
"""

from __future__ import annotations

import numpy as np

from tuner.deploy.onnx_custom import NotConvertible


def target_inverse(fitted):
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


def _const(name: str, value: float):
    from onnx import TensorProto, helper

    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value]))


def inverse_nodes(y: str, inverse) -> tuple[str, list]:
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
