"""A calibration map in the ONNX graph (tuner.deploy.onnx_calibration) answers as the native map does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


@pytest.mark.parametrize("k, method, parameters", [
    (2, "sigmoid", {"a": 0.4, "b": -1.3}),
    (2, "isotonic", {"x": [0.05, 0.3, 0.31, 0.7, 0.95], "y": [0.0, 0.1, 0.2, 0.2, 0.97]}),
    (2, "isotonic", {"x": [0.4], "y": [0.3]}),
    (3, "temperature", {"t": 2.5}),
])
def test_onnx_probabilities_and_labels_are_the_native_calibrated_models(k, method, parameters):
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from tuner.deploy.onnx_calibration import with_calibration
    from tuner.models.calibrated import CalibratedModel

    X, y = make_classification(600, 5, n_informative=3, n_classes=k, random_state=0)
    model = LogisticRegression().fit(X, y)
    onx = convert_sklearn(model, initial_types=[("x", FloatTensorType([None, 5]))],
                          options={id(model): {"zipmap": False}}, target_opset=17)
    onx = with_calibration(onx, method, parameters)
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": X.astype(np.float32)})))
    native = CalibratedModel(model, method, parameters, k)
    np.testing.assert_allclose(got["probabilities"], native.predict_proba(X), atol=1e-5)
    proba = native.predict_proba(X)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    np.testing.assert_array_equal(got["label"].reshape(-1)[clear], native.predict(X)[clear])
