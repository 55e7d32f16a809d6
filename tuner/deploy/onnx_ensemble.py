"""One ONNX graph for an ensemble: every member's graph side by side on the shared inputs,
their probabilities (or predicted values) weighted and summed, the label the most probable class.

Each member converts as a model of its own (:func:`tuner.deploy.onnx_convert.convert`); a member
that cannot raises :class:`~tuner.deploy.onnx_custom.NotConvertible` naming it, and the card says
why there is no ``model.onnx``.
"""

from __future__ import annotations

from tuner.deploy.onnx_convert import OPSET, convert
from tuner.deploy.onnx_custom import NotConvertible


def convert_ensemble(fitted, card: dict):
    """The ONNX ModelProto of a fitted ``WeightedEnsemble`` with the outputs of the ONNX model contract."""
    from onnx import TensorProto, compose, helper

    classification = card["task"] != "regression"
    members = []
    for i, (member, info) in enumerate(zip(fitted.members_, card["params"]["members"])):
        try:
            onx = convert(member, card)
        except NotConvertible as exc:
            raise NotConvertible(f"member {i + 1} ({info['model']}): {exc}") from exc
        members.append(compose.add_prefix(onx, f"m{i}_", rename_inputs=False))
    if classification and any(len(m.classes_) != len(fitted.classes_) for m in fitted.members_):
        raise NotConvertible("a member was fitted without every class, so its probabilities do not line up")
    graph = members[0].graph
    inputs = list(graph.input)
    nodes, initializers, weighted = [], [], []
    output = "probabilities" if classification else "prediction"
    for i, (onx, weight) in enumerate(zip(members, fitted.weights)):
        nodes += list(onx.graph.node)
        initializers += list(onx.graph.initializer)
        initializers.append(helper.make_tensor(f"ensemble_w{i}", TensorProto.FLOAT, [], [float(weight)]))
        nodes.append(helper.make_node("Mul", [f"m{i}_{output}", f"ensemble_w{i}"], [f"ensemble_part{i}"]))
        weighted.append(f"ensemble_part{i}")
    nodes.append(helper.make_node("Sum", weighted, [output]))
    if classification:
        nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])]
    else:
        outputs = [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None, 1])]
    merged = helper.make_graph(nodes, "tuner_ensemble", inputs, outputs, initializer=initializers)
    domains = {}
    for onx in members:
        for op in onx.opset_import:
            domains[op.domain] = max(domains.get(op.domain, 0), op.version)
    for domain, version in OPSET.items():
        domains[domain] = max(domains.get(domain, 0), version)
    model = helper.make_model(merged, opset_imports=[helper.make_opsetid(d, v) for d, v in domains.items()])
    model.ir_version = members[0].ir_version
    return model


__all__ = ["convert_ensemble"]
