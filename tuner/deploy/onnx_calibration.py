"""A calibration map (``tuner.models.calibrated``) as ONNX nodes after the converted model.

The converted model's ``probabilities`` and ``label`` become inner values; the graph's
``probabilities`` are the mapped ones and ``label`` their most probable class, as the native
calibrated model answers (a decision threshold, ``onnx_export.with_threshold``, then rebuilds
``label`` from these probabilities). The maps in ONNX operators:

- ``sigmoid``: ``q = Sigmoid(a * (log p - log(1 - p)) + b)`` on the positive column (p clipped as
  the native map clips it);
- ``isotonic``: linear interpolation between knots ``x_0 < ... < x_m``, written as
  ``y_0 + sum_i slope_i * min(max(p - x_i, 0), x_{i+1} - x_i)`` (a MatMul over the segments), then
  clipped to ``[EPS, 1 - EPS]``;
- ``temperature``: ``Softmax(log(max(p, tiny)) / T)``.
"""

from __future__ import annotations

import numpy as np

from tuner.models.calibrated import EPS

_INNER_PROBA, _INNER_LABEL = "probabilities_model", "label_model"


def with_calibration(onx, method: str, parameters: dict):
    """``onx`` whose ``probabilities`` pass through ``method``'s map and whose ``label`` is their argmax."""
    from onnx import TensorProto, helper, numpy_helper

    graph = onx.graph
    for node in graph.node:
        node.output[:] = [{"probabilities": _INNER_PROBA, "label": _INNER_LABEL}.get(o, o) for o in node.output]

    def const(name: str, value) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name=f"calibration_{name}"))
        return f"calibration_{name}"

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        graph.node.append(helper.make_node(op, inputs, [f"calibration_{output}"], **attrs))
        return f"calibration_{output}"

    if method == "temperature":
        p = node("Max", [_INNER_PROBA, const("tiny", 1e-12)], "p")
        scaled = node("Div", [node("Log", [p], "log_p"), const("t", float(parameters["t"]))], "scaled")
        graph.node.append(helper.make_node("Softmax", [scaled], ["probabilities"], axis=1))
    else:
        graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), name="calibration_start"))
        graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), name="calibration_end"))
        graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), name="calibration_axis"))
        p = node("Slice", [_INNER_PROBA, "calibration_start", "calibration_end", "calibration_axis"], "positive")
        if method == "sigmoid":
            p = node("Min", [node("Max", [p, const("low", 1e-7)], "p_low"), const("high", 1 - 1e-7)], "p_clipped")
            logit = node("Sub", [node("Log", [p], "log_p"),
                                 node("Log", [node("Sub", [const("one", 1.0), p], "q")], "log_q")], "logit")
            z = node("Add", [node("Mul", [logit, const("a", float(parameters["a"]))], "scaled"),
                             const("b", float(parameters["b"]))], "z")
            q = node("Sigmoid", [z], "mapped")
        else:  # isotonic
            x = np.asarray(parameters["x"], dtype=np.float64)
            y = np.asarray(parameters["y"], dtype=np.float64)
            width = np.diff(x)
            slope = np.diff(y) / np.where(width > 0, width, 1.0)
            if len(x) < 2:  # one knot: a constant
                q = node("Add", [node("Mul", [p, const("zero", 0.0)], "nothing"), const("y0", float(y[0]))], "constant")
            else:
                rise = node("Max", [node("Sub", [p, const("x", x[:-1].reshape(1, -1))], "past"), const("zero", 0.0)],
                            "rise")
                part = node("Min", [rise, const("width", width.reshape(1, -1))], "part")
                q = node("Add", [node("MatMul", [part, const("slope", slope.reshape(-1, 1))], "gained"),
                                 const("y0", float(y[0]))], "interpolated")
            q = node("Min", [node("Max", [q, const("eps", EPS)], "q_low"), const("eps_high", 1 - EPS)], "mapped")
        negative = node("Sub", [const("one_" + method, 1.0), q], "negative")
        graph.node.append(helper.make_node("Concat", [negative, q], ["probabilities"], axis=1))
    graph.node.append(helper.make_node("ArgMax", ["probabilities"], ["label_argmax"], axis=1, keepdims=0))
    label_type = next(o.type.tensor_type for o in graph.output if o.name == "label")
    if len(label_type.shape.dim) == 2:  # the converter's label is [N, 1]
        graph.initializer.append(numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), name="calibration_shape"))
        graph.node.append(helper.make_node("Reshape", ["label_argmax", "calibration_shape"], ["label_cast"]))
    else:
        graph.node.append(helper.make_node("Identity", ["label_argmax"], ["label_cast"]))
    graph.node.append(helper.make_node("Cast", ["label_cast"], ["label"], to=label_type.elem_type or TensorProto.INT64))
    return onx


__all__ = ["with_calibration"]
