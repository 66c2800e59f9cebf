"""Quantized models in: rewrite the quantize/dequantize graph TVM's TFLite frontend makes into
integer arithmetic.

TVM 0.27's Relax TFLite frontend turns every quantized operator into float arithmetic between
R.dequantize and R.quantize. `integerize` rewrites `main`:

- dequantize(x) -> conv2d [-> + dequantize(int32 bias)] -> quantize [-> clip] (CONV_2D,
  DEPTHWISE_CONV_2D) into R.nn.conv2d(x, int8 weight, out_dtype="int32") and a requantize
  epilogue, which FuseOps fuses into the convolution: the tasks are int8 depthwise / pointwise /
  conv with int32 accumulators;
- dequantize(x) -> matmul -> + bias -> quantize (FULLY_CONNECTED) the same way, as a 1x1
  convolution on the pooled (N, 1, 1, C) tensor, so the pointwise templates schedule it;
- astype(int32) -> avg_pool2d -> astype(int8) (AVERAGE_POOL_2D) into a sum and TFLite's rounding
  division (TVM's integer avg_pool2d truncates: -14/9 -> -1; TFLite rounds half away: -2);

and leaves dequantize -> softmax -> quantize as it is (1 x classes, float; on MobileNet files it
still equals TFLite's int8 softmax bit for bit). Any other operator left computing in float between
dequantize and quantize raises IntegerizeError naming it.

The epilogue is the chosen arithmetic (fixed_point.py) exactly: int32 accumulator + int32 bias,
scaled per output channel, + output zero point, clamped to the fused activation's range (ReLU /
ReLU6 are clamps).

Activation storage (`Int8Options.activation`). TFLite stores every post-ReLU tensor as int8 with
zero point -128. Stored instead as uint8 with zero point 0 (u = q + 128), the real value 0 is the
integer 0: a convolution's own zero padding is then TFLite's padding with the zero point (a separate
pad would be its own task: FuseOps does not fuse R.nn.pad into the conv) and the accumulator needs
no zero-point correction. "uint8" does this for every such tensor (for u8 x s8 dot products: x86
VNNI); "int8-unpadded" only for tensors a padded convolution reads (the depthwise inputs), keeping
pointwise inputs int8 with -zp * sum(w) folded into the bias (for s8 x s8 dot products: ARM sdot,
the AVX2 sign trick). Other zero points (the image input's) get an explicit pad with the zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, te, tirx

from tvm_mobilenet.errors import IntegerizeError
from tvm_mobilenet.model.fixed_point import ARITHMETICS, conv_multipliers, float_scales

ACTIVATIONS = ("uint8", "int8-unpadded")
# How the pointwise kernels multiply: exactly, or (x86 AVX2, opt-in) with ONNX Runtime's int16
# pair saturation (schedules/x86.py AVX2_INT8_SATURATING).
MULTIPLIES = ("exact", "saturating")
# Float operators allowed to remain: the classifier's softmax and the (de)quantize around it.
FLOAT_ALLOWED = {
    "relax.dequantize",
    "relax.quantize",
    "relax.nn.softmax",
    "relax.reshape",
    "relax.astype",
    "relax.permute_dims",
}


@dataclass(frozen=True)
class Int8Options:
    """How an int8 model is made integer: the requantize arithmetic, the activation storage and
    how the target's kernels multiply."""

    arithmetic: str = "xnnpack"  # one of fixed_point.ARITHMETICS
    activation: str = "uint8"  # one of ACTIVATIONS (what the target's int8 templates multiply)
    multiply: str = "exact"  # one of MULTIPLIES

    def __post_init__(self):
        if self.arithmetic not in ARITHMETICS:
            raise ValueError(f"int8 arithmetic must be one of {ARITHMETICS}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation storage must be one of {ACTIVATIONS}")
        if self.multiply not in MULTIPLIES:
            raise ValueError(f"int8 multiply must be one of {MULTIPLIES}")

    @property
    def label(self) -> str:
        """The log name's suffix and the catalogue's word for these options."""
        saturating = "-saturating" if self.multiply == "saturating" else ""
        return f"int8-{self.arithmetic}{saturating}"

    @property
    def key(self) -> dict:
        """What a log's key records of these options (exact ones as before this field)."""
        key = {"int8_arithmetic": self.arithmetic}
        return key if self.multiply == "exact" else {**key, "int8_multiply": self.multiply}

    def describe(self) -> str:
        saturating = ", saturating multiply" if self.multiply == "saturating" else ""
        return f"{self.arithmetic} arithmetic{saturating}"


@dataclass(frozen=True)
class QTensor:
    """A quantized tensor of the rewritten graph: real = scale * (stored - zero_point)."""

    expr: relax.Expr
    scale: float
    zero_point: int  # of the stored integers (0 for the uint8 form of TFLite's zero point -128)
    dtype: str  # "int8" or "uint8"

    @property
    def offset(self) -> int:
        """stored - TFLite's int8 value."""
        return 128 if self.dtype == "uint8" else 0


# ---------------------------------------------------------------------------- TE epilogues


def _barrier(value):
    """`value` unchanged, behind a bit-cast round trip the arithmetic simplifier cannot see
    through (int32 values only)."""
    return tirx.reinterpret("int32", tirx.reinterpret("float32", value))


def _clamp(value, zero_point: int, qmin: int, qmax: int, out_dtype: str):
    return tirx.max(tirx.min(value + zero_point, qmax), qmin).astype(out_dtype)


def requantize_te(acc, bias, multiplier, right_shift, left_shift, zero_point, qmin, qmax, dtype):
    """TFLite's fixed point: clamp(MultiplyByQuantizedMultiplier(acc + bias[c], m[c], shift[c]) +
    zp). The shift is split into right_shift = max(-shift, 0) and left_shift = max(shift, 0) (None
    when every channel's is 0: multipliers below 1, the usual case). SRDHM(x, m) = (x * m + 2^30)
    >> 31 in int64, then RoundingDivideByPOT as (h + (2^r >> 1) - (h < 0 and r > 0)) >> r."""
    one, zero = tirx.const(1, "int32"), tirx.const(0, "int32")

    def compute(*index):
        c = index[-1]
        x = acc[index] + bias[c]
        if left_shift is not None:
            x = x << left_shift[c]
        right = right_shift[c]
        # The barrier keeps the simplifier from rewriting int64(acc + bias) into int64(acc) +
        # int64(bias): LLVM then sees sext(i32) * sext(i32) and emits one vpmuldq / smull per pair
        # instead of a 64 x 64-bit multiply emulation (measured: a 3x slower epilogue).
        product = _barrier(x).astype("int64") * multiplier[c].astype("int64")
        high = ((product + tirx.const(1 << 30, "int64")) >> tirx.const(31, "int64")).astype("int32")
        negative = tirx.Select(tirx.all(high < zero, right > zero), one, zero)
        scaled = (high + ((one << right) >> one) - negative) >> right
        return _clamp(scaled, zero_point, qmin, qmax, dtype)

    return te.compute(acc.shape, compute, name="requantize")


def requantize_fp32_te(acc, bias, scale, zero_point, qmin, qmax, dtype):
    """XNNPACK's fp32 requantization: clamp(rint(float(acc + bias[c]) * scale[c]) + zp)."""

    def compute(*index):
        c = index[-1]
        product = (acc[index] + bias[c]).astype("float32") * scale[c]
        return _clamp(tirx.nearbyint(product).astype("int32"), zero_point, qmin, qmax, dtype)

    return te.compute(acc.shape, compute, name="requantize")


def average_pool_te(data, offset: int, qmin: int, qmax: int):
    """AVERAGE_POOL_2D over the whole NHWC map with TFLite's rounding, keepdims."""
    n, h, w, c = (int(d) for d in data.shape)
    count = h * w
    rh, rw = te.reduce_axis((0, h), name="rh"), te.reduce_axis((0, w), name="rw")
    total = te.compute(
        (n, 1, 1, c),
        lambda b, i, j, k: te.sum(data[b, rh, rw, k].astype("int32"), axis=[rh, rw]),
        name="pool_sum",
    )
    half = count // 2

    def average(b, i, j, k):
        t = total[b, i, j, k] - offset * count  # the sum of TFLite's int8 values
        rounded = tirx.Select(
            t > 0, tirx.floordiv(t + half, count), -tirx.floordiv(half - t, count)
        )
        return _clamp(rounded, offset, qmin, qmax, data.dtype)

    return te.compute((n, 1, 1, c), average, name="pool_average")


# ---------------------------------------------------------------------------- the graph


def _op_name(expr) -> str:
    return expr.op.name if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) else ""


def _scalar(value: np.ndarray) -> float | int:
    return np.asarray(value).reshape(-1)[0].item()


def _call_args(value) -> list:
    if isinstance(value, relax.Tuple):
        return list(value.fields)
    if not isinstance(value, relax.Call):
        return []
    args = []
    for arg in value.args:
        args.extend(arg.fields if isinstance(arg, relax.Tuple) else [arg])
    return args


class _Graph:
    """The bindings of one dataflow function: var -> value, and each var's users."""

    def __init__(self, func: relax.Function):
        self.values = dict(relax.analysis.get_var2val(func))
        self.users: dict[relax.Var, list] = {}
        for var, value in self.values.items():
            for arg in _call_args(value):
                if isinstance(arg, relax.Var):
                    self.users.setdefault(arg, []).append((var, value))

    def uses(self, var) -> int:
        return len(self.users.get(var, []))

    def value(self, expr):
        return self.values.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def call(self, expr, name: str):
        value = self.value(expr)
        return value if _op_name(value) == name else None

    def constant(self, expr) -> np.ndarray:
        """A constant, looking through permute_dims / reshape of constants."""
        value = self.value(expr)
        name = _op_name(value)
        if name == "relax.permute_dims":
            return np.transpose(self.constant(value.args[0]), [int(a) for a in value.attrs.axes])
        if name == "relax.reshape":
            return self.constant(value.args[0]).reshape([int(d) for d in value.ty.shape])
        if not isinstance(value, tvm.ir.expr.Constant):
            raise IntegerizeError(f"expected a constant, found {type(value).__name__}")
        return value.value.numpy()

    def feeds_padded_conv(self, var) -> bool:
        """Whether `var` is dequantized into a convolution with padding."""
        for user_var, user in self.users.get(var, []):
            if _op_name(user) != "relax.dequantize":
                continue
            for _, consumer in self.users.get(user_var, []):
                if _op_name(consumer) == "relax.nn.conv2d" and any(
                    int(p) for p in consumer.attrs.padding
                ):
                    return True
        return False

    def dequantized(self, expr) -> tuple[relax.Expr, np.ndarray, np.ndarray] | None:
        """(quantized source, scales, zero points) if `expr` is a dequantize."""
        call = self.call(expr, "relax.dequantize")
        if call is None:
            return None
        scale = np.atleast_1d(self.constant(call.args[1])).astype(np.float32)
        zero_point = np.atleast_1d(self.constant(call.args[2])).astype(np.int64)
        return call.args[0], scale, zero_point


@dataclass
class _Linear:
    """A matched dequantize -> conv2d | matmul -> (+ bias) -> quantize chain."""

    core: relax.Call
    data: relax.Expr  # the quantized input (a var of the old graph)
    data_scale: float
    data_zero_point: int
    weight: np.ndarray  # int8, in the core op's layout
    weight_scale: np.ndarray
    bias: np.ndarray | None  # int32 per output channel


class _Integerizer:
    def __init__(self, func: relax.Function, options: Int8Options):
        self.graph = _Graph(func)
        self.func = func
        self.options = options
        self.bb = relax.BlockBuilder()
        self.remap: dict[relax.Var, relax.Expr] = {}
        self.qtensors: dict[relax.Var, QTensor] = {}  # old int8 var -> its integer version
        self.rewritten: list[str] = []

    # -- tensors -------------------------------------------------------------------------------
    def qtensor(self, var, scale: float, zero_point: int) -> QTensor:
        """The integer version of an old int8 var (a graph input, or one we rewrote)."""
        if var in self.qtensors:
            return self.qtensors[var]
        expr = self.remap.get(var, var)
        dtype = str(expr.ty.dtype)
        if dtype != "int8":
            raise IntegerizeError(f"a quantized tensor of type {dtype}: only int8 is supported")
        return QTensor(expr, scale, zero_point, "int8")

    def as_tflite_int8(self, q: QTensor) -> relax.Expr:
        """The stored integers as TFLite's int8 values, for consumers we do not rewrite."""
        if q.dtype == "int8":
            return q.expr
        wide = self.bb.emit(relax.op.astype(q.expr, "int16"))
        shifted = self.bb.emit(relax.op.subtract(wide, relax.const(128, "int16")))
        return self.bb.emit(relax.op.astype(shifted, "int8"))

    def output_form(self, var, zero_point: int, qmin: int, qmax: int) -> tuple[str, int, int, int]:
        """(dtype, stored zero point, qmin, qmax) of a result TFLite stores as int8 with zp."""
        stored_unsigned = (
            self.options.activation == "uint8" or self.graph.feeds_padded_conv(var)
        ) and zero_point == -128
        if stored_unsigned:
            return "uint8", 0, qmin + 128, qmax + 128
        return "int8", zero_point, qmin, qmax

    # -- patterns ------------------------------------------------------------------------------
    def match_linear(self, quantize: relax.Call) -> _Linear | None:
        """quantize(add(conv2d|matmul(dequantize(x), dequantize(W)), dequantize(bias)))."""
        graph = self.graph
        add = graph.call(quantize.args[0], "relax.add")
        core = graph.value(add.args[0] if add is not None else quantize.args[0])
        if _op_name(core) not in ("relax.nn.conv2d", "relax.matmul"):
            return None
        data = graph.dequantized(core.args[0])
        reshape = graph.call(core.args[1], "relax.reshape")
        weight = graph.dequantized(reshape.args[0] if reshape is not None else core.args[1])
        if data is None or weight is None:
            return None
        bias = None
        if add is not None:
            bias_dq = graph.dequantized(add.args[1])
            if bias_dq is None:
                return None
            bias = graph.constant(bias_dq[0]).astype(np.int64).reshape(-1)
        if np.any(weight[2] != 0):
            raise IntegerizeError("weights with a non-zero zero point are not supported")
        w = graph.constant(weight[0])
        if reshape is not None:
            w = w.reshape([int(d) for d in graph.value(core.args[1]).ty.shape])
        return _Linear(
            core, data[0], float(data[1][0]), int(data[2][0]), w, weight[1].reshape(-1), bias
        )

    # -- emitters ------------------------------------------------------------------------------
    def requantize(self, var, acc, bias, scales, zero_point, qmin, qmax):
        """The epilogue; `scales` = (input scale, per-channel filter scales, output scale)."""
        dtype, zp, lo, hi = self.output_form(var, zero_point, qmin, qmax)
        const_bias = relax.const(bias.astype(np.int32))
        clamp = {"zero_point": zp, "qmin": lo, "qmax": hi, "dtype": dtype}
        if self.options.arithmetic == "xnnpack":
            scale = relax.const(float_scales(*scales))
            out = self.bb.emit_te(
                requantize_fp32_te, acc, const_bias, scale, **clamp, primfunc_name_hint="requantize"
            )
            return out, dtype, zp
        multiplier, shift = conv_multipliers(*scales)
        left = np.maximum(shift, 0).astype(np.int32)
        out = self.bb.emit_te(
            requantize_te,
            acc,
            const_bias,
            relax.const(multiplier),
            relax.const(np.maximum(-shift, 0).astype(np.int32)),
            relax.const(left) if left.any() else None,
            **clamp,
            primfunc_name_hint="requantize",
        )
        return out, dtype, zp

    def linear(self, var, quantize: relax.Call, clip: relax.Call | None) -> QTensor | None:
        matched = self.match_linear(quantize)
        if matched is None:
            return None
        x = self.qtensor(matched.data, matched.data_scale, matched.data_zero_point)
        out_scale = float(_scalar(self.graph.constant(quantize.args[1])))
        out_zp = int(_scalar(self.graph.constant(quantize.args[2])))
        qmin, qmax = -128, 127
        if clip is not None:  # a fused ReLU / ReLU6: the clamp of the quantized values
            qmin = max(qmin, round(float(clip.args[1].value)))
            qmax = min(qmax, round(float(clip.args[2].value)))
        is_conv = _op_name(matched.core) == "relax.nn.conv2d"
        if is_conv:
            acc, reduce_axes, channels = self.conv(matched.core, x, matched.weight)
            out_shape = None
        else:
            acc, out_shape = self.matmul(x, matched.weight)
            reduce_axes, channels = (0,), matched.weight.shape[-1]
        bias = np.zeros(channels, np.int64) if matched.bias is None else matched.bias
        # sum((stored - zp) * w) = sum(stored * w) - zp * sum(w): the zero point goes to the bias
        weight_sums = matched.weight.astype(np.int64).sum(axis=reduce_axes).reshape(-1)
        bias = bias - x.zero_point * weight_sums
        scales = (x.scale, np.broadcast_to(matched.weight_scale, (channels,)), out_scale)
        out, dtype, zp = self.requantize(var, acc, bias, scales, out_zp, qmin, qmax)
        if out_shape is not None:
            out = self.bb.emit(relax.op.reshape(out, out_shape))
        self.rewritten.append("conv2d" if is_conv else "matmul")
        return QTensor(out, out_scale, zp, dtype)

    def conv(self, core: relax.Call, x: QTensor, weight: np.ndarray):
        attrs = core.attrs
        if attrs.data_layout != "NHWC" or attrs.kernel_layout not in ("HWIO", "HWOI"):
            raise IntegerizeError(
                f"a conv2d in layout {attrs.data_layout}/{attrs.kernel_layout}: expected NHWC "
                "with HWIO or HWOI weights"
            )
        padding = [int(p) for p in attrs.padding]
        data = x.expr
        if x.zero_point != 0 and any(padding):  # pad with the zero point: the real value 0
            top, left, bottom, right = padding
            data = self.bb.emit(
                relax.op.nn.pad(
                    data,
                    [0, 0, top, bottom, left, right, 0, 0],
                    pad_value=float(x.zero_point),
                )
            )
            padding = [0, 0, 0, 0]
        acc = self.bb.emit(
            relax.op.nn.conv2d(
                data,
                relax.const(weight.astype(np.int8)),
                strides=attrs.strides,
                padding=padding,
                dilation=attrs.dilation,
                groups=attrs.groups,
                data_layout="NHWC",
                kernel_layout=attrs.kernel_layout,
                out_dtype="int32",
            )
        )
        # the weight's reduction axes: HWIO -> (0, 1, 2); depthwise HWOI (C, 1) -> (0, 1, 3)
        hwio = attrs.kernel_layout == "HWIO"
        return acc, (0, 1, 2) if hwio else (0, 1, 3), weight.shape[3 if hwio else 2]

    def matmul(self, x: QTensor, weight: np.ndarray):
        """FULLY_CONNECTED as a 1x1 NHWC convolution on (N, 1, 1, C), so it is a pointwise task
        the templates schedule (as an R.matmul DLight's GEMV was 10x slower here); returns the
        accumulator and the (N, units) shape to reshape the result to."""
        shape = [int(d) for d in x.expr.ty.shape]
        batch = int(np.prod(shape)) // weight.shape[0]
        data = x.expr
        if shape != [batch, 1, 1, weight.shape[0]]:
            data = self.bb.emit(relax.op.reshape(data, [batch, 1, 1, weight.shape[0]]))
        acc = self.bb.emit(
            relax.op.nn.conv2d(
                data,
                relax.const(weight.astype(np.int8).reshape(1, 1, *weight.shape)),
                data_layout="NHWC",
                kernel_layout="HWIO",
                out_dtype="int32",
            )
        )
        return acc, [batch, weight.shape[1]]

    def average_pool(self, cast: relax.Call) -> QTensor | None:
        """astype(avg_pool2d(astype(x, int32)), int8) over the whole map."""
        pool = self.graph.call(cast.args[0], "relax.nn.avg_pool2d")
        if pool is None or str(cast.attrs.dtype) != "int8":
            return None
        widen = self.graph.call(pool.args[0], "relax.astype")
        if widen is None or widen.args[0] not in self.qtensors:
            return None
        x = self.qtensors[widen.args[0]]
        shape = [int(d) for d in x.expr.ty.shape]
        if [int(p) for p in pool.attrs.pool_size] != shape[1:3] or any(
            int(p) for p in pool.attrs.padding
        ):
            raise IntegerizeError(
                f"AVERAGE_POOL_2D {list(pool.attrs.pool_size)} on {shape}: only global average "
                "pooling is supported"
            )
        lo, hi = (0, 255) if x.dtype == "uint8" else (-128, 127)
        out = self.bb.emit_te(
            average_pool_te,
            x.expr,
            offset=x.offset,
            qmin=lo,
            qmax=hi,
            primfunc_name_hint="average_pool",
        )
        self.rewritten.append("avg_pool2d")
        return QTensor(out, x.scale, x.zero_point, x.dtype)

    # -- the walk ------------------------------------------------------------------------------
    def remapped(self, value):
        """`value` with its variables replaced by their new versions (int8 views where needed)."""
        if isinstance(value, relax.Var):
            if value in self.qtensors:
                return self.as_tflite_int8(self.qtensors[value])
            return self.remap.get(value, value)
        if not isinstance(value, relax.Call):
            return value
        is_dequantize = _op_name(value) == "relax.dequantize"
        args = []
        for position, arg in enumerate(value.args):
            if isinstance(arg, relax.Var) and arg in self.qtensors:
                q = self.qtensors[arg]
                # dequantize reads the stored integers with their own zero point
                args.append(q.expr if is_dequantize and position == 0 else self.as_tflite_int8(q))
            elif isinstance(arg, relax.Tuple):
                args.append(relax.Tuple([self.remap.get(f, f) for f in arg.fields]))
            else:
                args.append(self.remap.get(arg, arg))
        if is_dequantize and value.args[0] in self.qtensors:
            args[2] = relax.const(self.qtensors[value.args[0]].zero_point, "int32")
        return relax.Call(value.op, args, value.attrs, value.ty_args)

    def _clipped(self, var) -> bool:
        """A quantize whose only user is a clip: rewritten together with it."""
        users = self.graph.users.get(var, [])
        return len(users) == 1 and _op_name(users[0][1]) == "relax.clip"

    def binding(self, var, value) -> None:
        name = _op_name(value)
        result = None
        if name == "relax.quantize" and self._clipped(var):
            return
        if name == "relax.clip" and isinstance(value.args[0], relax.Var):
            quantize = self.graph.call(value.args[0], "relax.quantize")
            if quantize is not None:
                result = self.linear(var, quantize, value)
                if result is None:  # not ours: emit the quantize skipped above, then the clip
                    self.remap[value.args[0]] = self.bb.emit(self.remapped(quantize))
        elif name == "relax.quantize":
            result = self.linear(var, value, None)
        elif name == "relax.astype":
            result = self.average_pool(value)
        if result is not None:
            self.qtensors[var] = result
            return
        self.remap[var] = self.bb.emit(self.remapped(value))

    def run(self) -> tvm.IRModule:
        body = self.func.body
        if len(body.blocks) != 1 or not isinstance(body.blocks[0], relax.DataflowBlock):
            raise IntegerizeError("expected one dataflow block in main")
        attrs = self.func.attrs
        attrs = {k: v for k, v in attrs.items() if k != "params"} if attrs else {}
        with self.bb.function("main", list(self.func.params), attrs=attrs):
            with self.bb.dataflow():
                for binding in body.blocks[0].bindings:
                    self.binding(binding.var, binding.value)
                out = body.body
                result = (
                    self.as_tflite_int8(self.qtensors[out])
                    if out in self.qtensors
                    else self.remap.get(out, out)
                )
                result = self.bb.emit_output(result)
            self.bb.emit_func_output(result)
        return self.bb.get()


def float_operators(mod: tvm.IRModule) -> list[str]:
    """Operators of `main` that still compute in float, other than FLOAT_ALLOWED."""
    found = set()

    def visit(expr):
        if (
            isinstance(expr, relax.Call)
            and isinstance(expr.op, tvm.ir.Op)
            and expr.op.name not in FLOAT_ALLOWED
            and str(getattr(getattr(expr, "ty", None), "dtype", "")).startswith("float")
        ):
            found.add(expr.op.name.removeprefix("relax."))

    relax.analysis.post_order_visit(mod["main"], visit)
    return sorted(found)


def is_quantized(mod: tvm.IRModule) -> bool:
    """Whether `main` dequantizes anything (a quantized model as the frontends import it)."""
    found = []
    relax.analysis.post_order_visit(
        mod["main"], lambda e: found.append(_op_name(e) == "relax.dequantize")
    )
    return any(found)


def integerize(
    mod: tvm.IRModule, options: Int8Options, strict: bool = True
) -> tuple[tvm.IRModule, list[str]]:
    """(the rewritten module, the rewritten operators). With `strict`, an operator left in float
    (one this rewrite does not know) raises IntegerizeError naming it."""
    worker = _Integerizer(mod["main"], options)
    out = worker.run()
    out = relax.transform.DeadCodeElimination()(out)
    out = relax.transform.FoldConstant()(out)  # weight reshapes/transposes of constants
    left = float_operators(out)
    if strict and left:
        raise IntegerizeError(
            f"quantized operator(s) without an integer rewrite: {', '.join(left)} (only "
            "convolutions, fully connected, global average pooling and the final softmax are)"
        )
    return out, worker.rewritten
