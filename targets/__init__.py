"""Target presets as data: one JSON file per target family (read by tvm_mobilenet.devices)."""
