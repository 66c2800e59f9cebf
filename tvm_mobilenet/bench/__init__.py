"""Benchmarks and evidence: ours against ONNX Runtime, OpenVINO, TFLite/XNNPACK and PyTorch
(api.run_benchmark),
template vs generated search (compare_search), tuning time to quality (time_to_quality)."""
