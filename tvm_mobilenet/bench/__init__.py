"""Benchmarks and evidence: ours against ONNX Runtime, OpenVINO, TFLite/XNNPACK and PyTorch
(api.run_benchmark), the paper's alpha x resolution family untuned (grid.run_grid),
template vs generated search (compare_search), tuning time to quality (time_to_quality)."""
