"""Export, model artifact, ONNX, predict, serve."""
