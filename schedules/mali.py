"""ARM Mali GPU (OpenCL) templates: depthwise and convolution in NHWC.

Each thread computes a few output pixels by one float4 of channels (Mali's ALUs are 128-bit
vector units and its caches favour vectorized loads); the accumulators live in registers
("local"), the bias + ReLU epilogue is applied by the same thread, and padding is read in place.
Threads per work-group, pixels per thread and the unroll step are the knobs."""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir

from tvm_mobilenet.tasks.blocks import CONV_BLOCK, DEPTHWISE_BLOCK

from .fusion import inline_prologue_and_epilogue
from .knobs import Knobs

VECTOR = 4  # float4


@dataclass(frozen=True)
class GpuParams:
    max_threads: int  # work-items per work-group (the device limit)
    default_threads: int  # untuned choice

    @property
    def activation(self) -> str:
        """int8 activation storage (model/quantized.py): plain integer arithmetic multiplies any;
        uint8 lets every convolution pad with zeros in place."""
        return "uint8"

    @property
    def exact(self) -> bool:
        """Whether the int8 kernels multiply exactly: plain int32 arithmetic does."""
        return True


def params_for(target: tvm.target.Target) -> GpuParams:
    max_threads = int(target.attrs.get("max_num_threads", 256))
    return GpuParams(max_threads=max_threads, default_threads=min(64, max_threads))


def _bind_threads(sch: s_tir.Schedule, knobs: Knobs, params: GpuParams, loops) -> object:
    """Fuse the outer loops and split them into work-groups x work-items; returns the item loop."""
    fused = sch.fuse(*loops)
    (groups, items), _ = knobs.tile(
        fused, [params.default_threads], max_innermost=params.max_threads
    )
    sch.bind(groups, "blockIdx.x")
    sch.bind(items, "threadIdx.x")
    return items


def _finish(
    sch: s_tir.Schedule, knobs: Knobs, conv, epilogue, thread_loop, reduction_start, vector_factor
) -> None:
    sch.set_scope(conv, 0, "local")  # the accumulators: registers of one work-item
    sch.reverse_compute_at(epilogue, thread_loop, preserve_unit_loops=True)
    *_, channel = sch.get_loops(epilogue)
    _, channel_vector = sch.split(channel, [None, vector_factor], preserve_unit_iters=True)
    sch.vectorize(channel_vector)
    sch.vectorize(sch.get_loops(conv)[-1])
    knobs.unroll(thread_loop)
    sch.decompose_reduction(conv, reduction_start)


def depthwise(sch: s_tir.Schedule, params: GpuParams, tuning: bool) -> None:
    knobs = Knobs(sch, tuning)
    conv = sch.get_sblock(DEPTHWISE_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv)
    n, h, w, c, kh, kw, rc = sch.get_loops(conv)
    (c_outer, c_vector), c_factors = knobs.tile(c, [VECTOR], max_innermost=VECTOR)
    pixels = sch.fuse(n, h, w)
    sch.reorder(pixels, c_outer, kh, kw, rc, c_vector)
    thread = _bind_threads(sch, knobs, params, [pixels, c_outer])
    _finish(sch, knobs, conv, epilogue, thread, kh, c_factors[1])


def conv(sch: s_tir.Schedule, params: GpuParams, tuning: bool) -> None:
    knobs = Knobs(sch, tuning)
    conv_block = sch.get_sblock(CONV_BLOCK)
    epilogue = inline_prologue_and_epilogue(sch, conv_block)
    n, h, w, o, kh, kw, i = sch.get_loops(conv_block)
    # A thread's pixels are neighbours in one row: split the width, not the fused pixels, or the
    # accumulators' extent cannot be bounded and each thread would get a whole-map private array.
    (w_outer, p_inner), _ = knobs.tile(w, [2], max_innermost=8)
    (o_outer, o_vector), o_factors = knobs.tile(o, [VECTOR], max_innermost=VECTOR)
    (i_outer, i_inner), _ = knobs.tile(i, [4], max_innermost=16)
    sch.reorder(n, h, w_outer, o_outer, i_outer, kh, kw, i_inner, p_inner, o_vector)
    thread = _bind_threads(sch, knobs, params, [n, h, w_outer, o_outer])
    _finish(sch, knobs, conv_block, epilogue, thread, i_outer, o_factors[1])


# int8 arithmetic by default: TFLite's fixed point, its reference.
DEFAULT_INT8_ARITHMETIC = "tflite"

# int8: the same templates; the accumulators are int4 vectors instead of float4 ones and the
# requantize epilogue is plain integer arithmetic. TVM 0.27's OpenCL codegen has no arm_dot
# (cl_arm_integer_dot_product), so there is no dot-product path.
int8_params_for = params_for

TEMPLATES = {"depthwise": depthwise, "conv": conv, "int8_depthwise": depthwise, "int8_conv": conv}
