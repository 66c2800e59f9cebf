"""The anchor blocks of the tasks: the names Relax's legalization gives NHWC convolutions (the
layout tvm_mobilenet/model/relax_builder.py chooses). Templates and the weight packing find the
convolution (and the classifier) of a fused function by these names."""

DEPTHWISE_BLOCK = "group_conv2d_nhwc"
CONV_BLOCK = "conv2d_nhwc"  # pointwise and full convolutions
DENSE_BLOCK = "matmul"  # the classifier, with [K, N] weights (relax_builder.py transposes them)
# Fused 1x1 functions that compile replaced by a Strassen kernel keep their name + this suffix.
STRASSEN_SUFFIX = "_strassen"
