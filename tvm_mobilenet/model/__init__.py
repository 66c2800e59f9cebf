"""The model stage: MobileNet v1 as data (architecture.py), its weights, the Relax module, the
float64 reference, and model files (ONNX / TFLite / PyTorch) imported into the same form.
`source.ModelSource` is what tune and compile take."""
