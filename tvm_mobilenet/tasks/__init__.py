"""The tasks stage: the fused TIR functions of a model to tune, labelled depthwise / pointwise /
conv / other."""
