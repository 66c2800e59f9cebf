"""Benchmark our compiled MobileNet against ONNX Runtime, OpenVINO, TFLite/XNNPACK and PyTorch."""

from .harness import SystemResult
from .peer import Peer, Predict
from .report import BenchReport, format_table, write_plot

__all__ = ["BenchReport", "Peer", "Predict", "SystemResult", "format_table", "write_plot"]
