"""Shape computations folded to constants while TVM's TFLite frontend imports a static-shape model.

Keras exports with a dynamic batch compute a reshape's target from the tensor itself
(SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE: Keras's MobileNet v1 and MobileNetV3Small end so).
TVM 0.27's `convert_reshape` puts such a computed target into `relax.ShapeExpr(...)`, which takes
only a list of dimensions, and fails ("Expected Array<ir.Expr> but got ir.Call"). Once the input
shape is fixed (`--input-shape`), every tensor's shape is static and the chain is a constant.
`StaticShapeConverter`, given to `from_tflite(..., op_converter=...)` (the frontend's own hook),
makes SHAPE a constant, folds every small integer result computed from constants only, and gives
RESHAPE a constant target. Tensors whose shape is not static go through TVM's converters unchanged.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

# Only shape-like results are folded: integer, at most 1-D, a few elements. Float expressions of
# constants (weights, the dequantize of int8 weights) stay as the frontend emits them.
SHAPE_DTYPES = ("int32", "int64")
MAX_SHAPE_ELEMENTS = 16


def static_shape(expr: relax.Expr) -> list[int] | None:
    """The shape of a tensor expression if every dimension is a known integer, else None."""
    shape = getattr(getattr(expr, "ty", None), "shape", None)
    if not isinstance(shape, relax.ShapeExpr):
        return None
    dims = [getattr(d, "value", None) for d in shape.values]
    return None if None in dims else [int(d) for d in dims]


def _is_shape_like(expr: relax.Expr) -> bool:
    ty = getattr(expr, "ty", None)
    if not isinstance(ty, relax.TensorType) or str(ty.dtype) not in SHAPE_DTYPES:
        return False
    shape = static_shape(expr)
    return shape is not None and len(shape) <= 1 and int(np.prod(shape)) <= MAX_SHAPE_ELEMENTS


def fold_shape_computation(expr: relax.Expr) -> Constant | None:
    """The value of `expr` if it reads only constants and is shape-like, else None.

    `expr` is a converter's result before the frontend normalizes it (after, its inner calls are
    bound to variables and it no longer looks closed); it is evaluated by Relax's FoldConstant in
    a throw-away function.
    """
    if isinstance(expr, Constant) or relax.analysis.free_vars(expr):
        return None
    builder = relax.BlockBuilder()
    with builder.function("main", []):
        with builder.dataflow():
            out = builder.emit_output(expr)
        builder.emit_func_output(out)
    mod = builder.get()
    if not _is_shape_like(mod["main"].body.body):
        return None
    folded = relax.transform.FoldConstant()(mod)["main"].body.body
    return folded if isinstance(folded, Constant) else None


class StaticShapeConverter(OperatorConverter):
    """TVM's TFLite operator converter, with shape computations on static shapes folded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.convert_map = {name: _folding(convert) for name, convert in self.convert_map.items()}

    def convert_shape(self, op):
        (tensor,) = self.get_input_tensors(op)
        shape = static_shape(self.get_tensor_expr(tensor))
        if shape is None:
            return super().convert_shape(op)
        (output,) = self.get_output_tensors(op)
        dtype = self.get_tensor_type_str(output.tensor.Type())
        return relax.const(np.array(shape, dtype=dtype))

    def convert_reshape(self, op):
        inputs = self.get_input_tensors(op)
        computed = len(inputs) == 2 and self.has_expr(inputs[1].tensor_idx)
        target = self.get_expr(inputs[1].tensor_idx) if computed else None
        if not isinstance(target, Constant) or inputs[0].qnn_params:
            return super().convert_reshape(op)
        new_shape = [int(d) for d in target.value.numpy()]
        return relax.op.reshape(self.get_tensor_expr(inputs[0]), new_shape)


def _folding(convert):
    """`convert`, with a result that is a closed shape computation replaced by its value."""

    def run(op):
        out = convert(op=op)
        if isinstance(out, relax.Call):
            return fold_shape_computation(out) or out
        return out

    return run
