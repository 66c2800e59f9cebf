"""The anchor blocks of the tasks: the names Relax's legalization gives NHWC convolutions (the
layout tvm_mobilenet/model/relax_builder.py chooses). Templates and the weight packing find the
convolution of a fused function by these names."""

DEPTHWISE_BLOCK = "group_conv2d_nhwc"
CONV_BLOCK = "conv2d_nhwc"  # pointwise and full convolutions
