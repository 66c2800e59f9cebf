"""ONNX QDQ models in: bring what TVM 0.27's ONNX frontend makes of a QDQ file into the form its
TFLite frontend gives a full-integer file, which quantized.py's `integerize` rewrites.

What the ONNX frontend gives (checked on the QDQ MobileNet of bench/qdq_onnx.py) and the form we
emit instead:

- NCHW: DequantizeLinear -> Conv (OIHW) -> + reshape(dequantize(bias), (1, C, 1, 1)) -> Clip ->
  QuantizeLinear. Relax's ConvertLayout cannot take it to NHWC: it knows no layout for R.quantize,
  R.dequantize or the Clip below, and wraps a transpose around each. Here every 4-D activation is
  carried in NHWC (per-tensor quantize / dequantize do not care), weights are transposed to HWIO
  with their per-channel scales on axis 3, and the bias is added as a (C,) vector.
- Clip is imported as call_tir(maximum / minimum) of topi with where(isnan(bound)) scalars, ReLU as
  R.nn.relu, both in float before the quantize. Quantizing is monotone, so quantize(clip(x, lo, hi))
  = clip(quantize(x), quantize(lo), quantize(hi)): TFLite's form, a clip of the int8 values.
- AveragePool between DequantizeLinear and QuantizeLinear of the same scale and zero point becomes
  astype(int32) -> avg_pool2d -> astype(int8), as TFLite's; Gemm's weight (units, in) is given as
  the dequantized (in, units) matrix, the flatten of a 1x1 map a reshape of the int8 values
  (whether the file flattens before or after its DequantizeLinear).

Anything else between a dequantize and a quantize raises IntegerizeError naming it (one line)."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvm_mobilenet.errors import IntegerizeError

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
CLAMPS = {"relax.nn.relu": (0.0, np.inf)}
# Operators on an activation carried in NHWC, by the method that emits them.
FEATURE_MAP_OPS = {
    "relax.dequantize": "dequantize",
    "relax.add": "bias_add",
    "relax.permute_dims": "to_nchw",
    "relax.reshape": "flatten",
}
# Operators on constants, the Clip's bounds and the classifier's (N, classes) values: unchanged.
PASSED_THROUGH = {
    "relax.isnan",
    "relax.where",
    "relax.dequantize",
    "relax.reshape",
    "relax.nn.softmax",
    "relax.permute_dims",
    "relax.add",
}


def _op(expr) -> str:
    """The operator's name; "call NAME" for a call_tir of the PrimFunc NAME."""
    if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
        return ""
    if expr.op.name == "relax.call_tir":
        return "call " + expr.args[0].name_hint
    return expr.op.name


def _rank(expr) -> int:
    return len(expr.ty.shape) if hasattr(expr.ty, "shape") and expr.ty.shape is not None else -1


class _Normalizer:
    """One walk over `main`'s bindings, emitting the TFLite form into a new BlockBuilder. A clamp
    or average pool is emitted by the quantize that consumes it."""

    def __init__(self, mod: tvm.IRModule):
        self.func = mod["main"]
        self.values = dict(relax.analysis.get_var2val(self.func))
        self.bb = relax.BlockBuilder()
        self.new: dict = {}  # old var -> new expr (4-D activations in NHWC)

    # -- reading the old graph ---------------------------------------------------------------
    def value(self, expr):
        return self.values.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def constant(self, expr) -> np.ndarray:
        value = self.value(expr)
        name = _op(value)
        if name == "relax.where" and _op(self.value(value.args[0])) == "relax.isnan":
            return self.constant(value.args[2])  # Clip's bound, NaN-guarded by the frontend
        if name == "relax.reshape":
            return self.constant(value.args[0]).reshape([int(d) for d in value.ty.shape])
        if not isinstance(value, tvm.ir.expr.Constant):
            raise IntegerizeError(f"QDQ: expected a constant, found {name or type(value).__name__}")
        return value.value.numpy()

    def clamp_of(self, value) -> tuple[object, float, float] | None:
        """(input, low, high) of a float clamp as the frontend imports Clip / Relu."""
        name = _op(value)
        if name in CLAMPS:
            return (value.args[0], *CLAMPS[name])
        if name.startswith(("call maximum", "call minimum")):  # topi's, for ONNX Clip
            x, bound = value.args[1].fields
            bound = float(self.constant(bound))
            return (x, bound, np.inf) if "maximum" in name else (x, -np.inf, bound)
        if name == "relax.clip":
            return (value.args[0], float(value.args[1].value), float(value.args[2].value))
        return None

    # -- emitting ------------------------------------------------------------------------------
    def get(self, var):
        """The new version of `var`; a 4-D graph input is NCHW for the file, NHWC here."""
        if var not in self.new and var in self.func.params and _rank(var) == 4:
            self.new[var] = self.bb.emit(relax.op.permute_dims(var, TO_NHWC))
        return self.new.get(var, var)

    def emit(self, var, expr) -> None:
        self.new[var] = self.bb.emit(expr)

    def per_tensor(self, call, data, out_dtype: str):
        """quantize / dequantize of an activation with its (scalar) scale and zero point."""
        scale, zero_point = (self.constant(a) for a in call.args[1:3])
        if scale.size != 1:
            raise IntegerizeError("QDQ: a per-channel quantized activation is not supported")
        op = relax.op.quantize if _op(call) == "relax.quantize" else relax.op.dequantize
        return op(
            data,
            relax.const(scale.reshape(()).astype(np.float32)),
            relax.const(zero_point.reshape(()).astype(np.int32)),
            axis=-1,
            out_dtype=out_dtype,
        )

    def weight(self, expr, order: list[int]):
        """dequantize(W) of a constant, transposed by `order` (or by the permute_dims around it),
        its per-channel scales moved with their axis."""
        call = self.value(expr)
        if _op(call) == "relax.permute_dims":
            order = [int(a) for a in call.attrs.axes]
            call = self.value(call.args[0])
        if _op(call) != "relax.dequantize":
            raise IntegerizeError("QDQ: a convolution or Gemm whose weights are not quantized")
        data, scale, zero_point = (self.constant(a) for a in call.args)
        return relax.op.dequantize(
            relax.const(data.transpose(order)),
            relax.const(scale.astype(np.float32)),
            relax.const(zero_point.astype(np.int32)),
            axis=order.index(int(call.attrs.axis)) if scale.size > 1 else -1,
        )

    def quantize(self, var, call) -> None:
        """quantize(clamp(x)) -> clip(quantize(x)); quantize(avg_pool(dequantize(q))) -> TFLite's
        integer pool."""
        x, low, high = call.args[0], -np.inf, np.inf
        while (clamp := self.clamp_of(self.value(x))) is not None:
            x, low, high = clamp[0], max(low, clamp[1]), min(high, clamp[2])
        if _op(self.value(x)) == "relax.nn.avg_pool2d":
            self.new[var] = self.average_pool(self.value(x), call)
            return
        quantized = self.bb.emit(self.per_tensor(call, self.get(x), str(call.ty.dtype)))
        if np.isfinite(low) or np.isfinite(high):
            scale, zero_point = (float(self.constant(a)) for a in call.args[1:3])
            lo, hi = (
                float(np.clip(np.round(b / scale) + zero_point, -128, 127)) for b in (low, high)
            )
            quantized = self.bb.emit(relax.op.clip(quantized, lo, hi))
        self.new[var] = quantized

    def average_pool(self, pool, quantize):
        source = self.value(pool.args[0])
        if _op(source) != "relax.dequantize" or not np.array_equal(
            [self.constant(a) for a in source.args[1:3]],
            [self.constant(a) for a in quantize.args[1:3]],
        ):
            raise IntegerizeError("QDQ: AveragePool must keep its input's scale and zero point")
        wide = self.bb.emit(relax.op.astype(self.get(source.args[0]), "int32"))
        pooled = self.bb.emit(
            relax.op.nn.avg_pool2d(
                wide,
                pool_size=[int(p) for p in pool.attrs.pool_size],
                strides=[int(s) for s in pool.attrs.strides],
                padding=[int(p) for p in pool.attrs.padding],
                layout="NHWC",
            )
        )
        return self.bb.emit(relax.op.astype(pooled, "int8"))

    def conv(self, var, call) -> None:
        attrs = call.attrs
        if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW":
            raise IntegerizeError(f"QDQ: a conv2d in layout {attrs.data_layout}")
        self.emit(
            var,
            relax.op.nn.conv2d(
                self.get(call.args[0]),
                self.bb.emit(self.weight(call.args[1], [2, 3, 1, 0])),
                strides=attrs.strides,
                padding=attrs.padding,
                dilation=attrs.dilation,
                groups=attrs.groups,
                data_layout="NHWC",
                kernel_layout="HWIO",
            ),
        )

    def bias_add(self, var, call) -> None:
        bias = self.value(call.args[1])
        if _op(bias) == "relax.reshape":  # (C,) -> (1, C, 1, 1): add the (C,) vector in NHWC
            bias = bias.args[0]
        self.emit(var, relax.op.add(self.get(call.args[0]), self.get(bias)))

    def to_nchw(self, var, call) -> None:
        if [int(a) for a in call.attrs.axes] != TO_NCHW:
            raise IntegerizeError("QDQ: a transpose of a feature map")
        source = call.args[0]  # NHWC (the file's input, say), made NCHW for the graph
        self.new[var] = self.new.get(source, source)

    def matmul(self, var, call) -> None:
        weight = self.bb.emit(self.weight(call.args[1], [0, 1]))
        self.emit(var, relax.op.matmul(self.get(call.args[0]), weight))

    def flatten(self, var, call) -> None:
        source = self.value(call.args[0])
        if [int(d) for d in call.args[0].ty.shape][2:] != [1, 1]:
            raise IntegerizeError("QDQ: a flatten of a feature map larger than 1x1")
        if str(call.args[0].ty.dtype) == "int8":  # flattened while quantized, dequantized after
            self.emit(var, relax.op.reshape(self.get(call.args[0]), call.ty.shape))
            return
        if _op(source) != "relax.dequantize":
            raise IntegerizeError("QDQ: a flatten of a float feature map")
        flat = self.bb.emit(relax.op.reshape(self.get(source.args[0]), call.ty.shape))
        self.emit(var, self.per_tensor(source, flat, "float32"))  # flatten int8, then dequantize

    def binding(self, var, value) -> None:
        name = _op(value)
        source = value.args[0] if value.args else None
        on_feature_map = source in self.new and _rank(source) == 4
        if name == "relax.quantize":
            self.quantize(var, value)
        elif name == "relax.nn.conv2d":
            self.conv(var, value)
        elif name == "relax.matmul":
            self.matmul(var, value)
        elif on_feature_map and name in FEATURE_MAP_OPS:
            getattr(self, FEATURE_MAP_OPS[name])(var, value)
        elif self.clamp_of(value) is not None or name == "relax.nn.avg_pool2d":
            pass  # emitted with the quantize that follows
        elif name in PASSED_THROUGH and not on_feature_map:
            self.new[var] = self.bb.emit(self.remapped(value))
        else:
            raise IntegerizeError(
                f"QDQ: no integer form for {name.removeprefix('relax.') or 'a binding'} here"
            )

    def dequantize(self, var, call) -> None:
        self.emit(var, self.per_tensor(call, self.get(call.args[0]), "float32"))

    def remapped(self, call):
        args = [self.get(a) if isinstance(a, relax.Var) else a for a in call.args]
        return relax.Call(call.op, args, call.attrs, call.ty_args)

    def run(self) -> tvm.IRModule:
        body = self.func.body
        attrs = dict(self.func.attrs.items()) if self.func.attrs else {}
        with self.bb.function("main", list(self.func.params), attrs=attrs):
            with self.bb.dataflow():
                for binding in body.blocks[0].bindings:
                    self.binding(binding.var, binding.value)
                out = self.get(body.body)
                if _rank(body.body) == 4:  # the file's output layout
                    out = self.bb.emit(relax.op.permute_dims(out, TO_NCHW))
                out = self.bb.emit_output(out)
            self.bb.emit_func_output(out)
        return relax.transform.DeadCodeElimination()(self.bb.get())


def to_tflite_form(mod: tvm.IRModule) -> tvm.IRModule:
    """The ONNX frontend's QDQ graph in the TFLite frontend's form (see the module docstring)."""
    if len(mod["main"].body.blocks) != 1:
        raise IntegerizeError("QDQ: expected one dataflow block in main")
    return _Normalizer(mod).run()
