"""Tensor intrinsics of the int8 pointwise template: C[L] += A[D] x B[L, D] (int32 accumulators).

One intrinsic call multiplies D consecutive input channels of one pixel (broadcast) with an L x D
block of packed weights (one vector load) into L int32 accumulators. TVM 0.27 ships x86 VNNI and ARM
sdot / NEON ones in `tvm.s_tir.tensor_intrin`, but importing that module parses every CUDA
intrinsic's TVMScript (minutes on a busy 2-core machine), its VNNI one fails LLVM 22's verifier, and
it has none for AVX2; these are registered under our own names, on first use (`register`).

| name          | family          | A x B   | instructions                                   |
|---------------|-----------------|---------|------------------------------------------------|
| AVX2_SIGN     | x86 AVX2        | s8 x s8 | vpsignb, vpabsb, vpmaddubsw, vpmaddwd (ones)   |
| AVX2_U8S8     | x86 AVX2, opt-in| u8 x s8 | vpmaddubsw, vpmaddwd (ones); pairs saturate     |
| VNNI          | x86 AVX-512 VNNI| u8 x s8 | vpdpbusd                                       |
| SDOT          | ARM +dotprod    | s8 x s8 | sdot                                           |
| NEON          | ARM NEON        | s8 x s8 | smull x2, saddlp x2, addp                      |

Intermediate values are `T.meta_var`s (substituted into the one final store): TVM 0.27's TVMScript
makes a plain `x = expr` a one-element local buffer, which the CPU lowering turned into a
TVMBackendAllocWorkspace / FreeWorkspace pair per buffer in every iteration of the parallel loop.
That made the 64x64x16 -> 32 int8 pointwise kernel ~20x slower than its fp32 twin (1 thread, znver3,
2026-11-26: 1.3-1.6 ms against 64 us); without them it is a plain register tile.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T


@dataclass(frozen=True)
class DotIntrinsic:
    name: str
    lanes: int  # L: int32 outputs per call
    depth: int  # D: input channels per output
    activation: str  # the dtype of A: "int8" or "uint8"
    weight_min: int = -128  # the smallest weight it multiplies exactly
    exact: bool = True  # False: sums may saturate (AVX2_U8S8)


AVX2_SIGN = DotIntrinsic("tvm_mobilenet_dot_8x4_i8i8i32_avx2_sign", 8, 4, "int8", weight_min=-127)
AVX2_U8S8 = DotIntrinsic(
    "tvm_mobilenet_dot_8x4_u8i8i32_avx2_saturating", 8, 4, "uint8", exact=False
)
VNNI = DotIntrinsic("tvm_mobilenet_dot_16x4_u8i8i32_vnni", 16, 4, "uint8")
SDOT = DotIntrinsic("tvm_mobilenet_dot_4x4_i8i8i32_sdot", 4, 4, "int8")
NEON = DotIntrinsic("tvm_mobilenet_dot_4x4_i8i8i32_neon", 4, 4, "int8")


def _description(lanes: int, depth: int, a_dtype: str):
    @T.prim_func(s_tir=True)
    def description(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), a_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, depth), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, depth):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return description


def _sign_trick(a_vec, w_vec):
    """(|a|, sign(a) * w): vpmaddubsw's u8 and s8 operands for s8 activations (see _avx2)."""
    a_abs = _llvm("llvm.abs", a_vec, T.bool(False), dtype="int8x32")
    return a_abs, _llvm("llvm.x86.avx2.psign.b", w_vec, a_vec, dtype="int8x32")


def _avx2(intrinsic: DotIntrinsic):
    """vpmaddubsw (u8 x s8 -> int16 pair sums, saturating), vpmaddwd with ones (pairs -> int32).

    AVX2_SIGN, exact, for s8 activations: fed |a| (<= 128, as u8) and sign(a) * w (|w| <= 127:
    TFLite's weights are symmetric, and the weight packing refuses -128), a pair is at most
    2 * 128 * 127 = 32512 < 32767. AVX2_U8S8, as ONNX Runtime's AVX2 kernels multiply: u8
    activations straight in, 3 instructions per 32 multiply-adds instead of 4 (~1.4x faster
    pointwise kernels on znver3), but a pair a0 * w0 + a1 * w1 (a up to 255) saturates at
    +-32767 / -32768: not exact, opt-in (`--int8-multiply saturating`; schedules/x86.py)."""
    a_dtype = intrinsic.activation

    @T.prim_func(s_tir=True)
    def implementation(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (4,), a_dtype, offset_factor=1)
        B = T.match_buffer(b, (8, 4), "int8", offset_factor=1)
        C = T.match_buffer(c, (8,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:8], A[0:4], B[0:8, 0:4])
            T.writes(C[0:8])
            word = T.meta_var(T.reinterpret(A.vload([0], f"{a_dtype}x4"), dtype="int32"))
            a_vec = T.meta_var(T.reinterpret(T.broadcast(word, 8), dtype="int8x32"))
            w_vec = T.meta_var(B.vload([0, 0], "int8x32"))
            u8, s8 = T.meta_var(_sign_trick(a_vec, w_vec) if a_dtype == "int8" else (a_vec, w_vec))
            pairs = T.meta_var(_llvm("llvm.x86.avx2.pmadd.ub.sw", u8, s8, dtype="int16x16"))
            C[T.ramp(T.int32(0), 1, 8)] = C.vload([0], "int32x8") + _llvm(
                "llvm.x86.avx2.pmadd.wd", pairs, T.broadcast(T.int16(1), 16), dtype="int32x8"
            )

    return implementation


def _one_instruction(intrinsic: DotIntrinsic, llvm_name: str):
    """The body of an intrinsic that one instruction computes, C = op(C, A broadcast to every lane,
    B): vpdpbusd and sdot."""
    lanes, depth, a_dtype = intrinsic.lanes, intrinsic.depth, intrinsic.activation
    word_dtype, acc_dtype = f"{a_dtype}x{depth}", f"int32x{lanes}"
    broadcast_dtype, weights_dtype = f"{a_dtype}x{lanes * depth}", f"int8x{lanes * depth}"

    @T.prim_func(s_tir=True)
    def implementation(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (depth,), a_dtype, offset_factor=1)
        B = T.match_buffer(b, (lanes, depth), "int8", offset_factor=1)
        C = T.match_buffer(c, (lanes,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            word = T.meta_var(T.reinterpret(A.vload([0], word_dtype), dtype="int32"))
            C[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(llvm_name),
                C.vload([0], acc_dtype),
                T.reinterpret(T.broadcast(word, lanes), dtype=broadcast_dtype),
                B.vload([0, 0], weights_dtype),
                dtype=acc_dtype,
            )

    return implementation


def _vnni():
    """vpdpbusd on <64 x i8> operands, as LLVM >= 20 declares it (TVM 0.27's own dot_16x4_vnni
    passes <16 x i32> and fails the verifier of its bundled LLVM 22)."""
    return _one_instruction(VNNI, "llvm.x86.avx512.vpdpbusd.512")


def _sdot():
    return _one_instruction(SDOT, "llvm.aarch64.neon.sdot.v4i32.v16i8")


SMULL = "llvm.aarch64.neon.smull.v8i16"  # int8 x int8 -> int16, 8 lanes
SADDLP = "llvm.aarch64.neon.saddlp.v4i32.v8i16"  # adjacent int16 pairs -> int32


def _llvm(name: str, *args, dtype: str):
    """An LLVM intrinsic call inside a TVMScript body (evaluated when the body is parsed)."""
    return T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id(name), *args, dtype=dtype)


def _neon():
    """Without +dotprod: smull (8 x s8 * s8 -> s16) twice, saddlp (pairs -> s32) twice, addp."""

    @T.prim_func(s_tir=True)
    def implementation(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (4,), "int8", offset_factor=1)
        B = T.match_buffer(b, (4, 4), "int8", offset_factor=1)
        C = T.match_buffer(c, (4,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            word = T.meta_var(T.reinterpret(A.vload([0], "int8x4"), dtype="int32"))
            a_vec = T.meta_var(T.reinterpret(T.broadcast(word, 2), dtype="int8x8"))
            b_vec = T.meta_var(B.vload([0, 0], "int8x16"))
            low = T.meta_var(
                _llvm(SMULL, a_vec, T.vectorlow(b_vec, dtype="int8x8"), dtype="int16x8")
            )
            high = T.meta_var(
                _llvm(SMULL, a_vec, T.vectorhigh(b_vec, dtype="int8x8"), dtype="int16x8")
            )
            pairs_low = T.meta_var(_llvm(SADDLP, low, dtype="int32x4"))
            pairs_high = T.meta_var(_llvm(SADDLP, high, dtype="int32x4"))
            C[T.ramp(T.int32(0), 1, 4)] = C.vload([0], "int32x4") + T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.aarch64.neon.addp.v4i32"),
                pairs_low,
                pairs_high,
                dtype="int32x4",
            )

    return implementation


IMPLEMENTATIONS = {
    AVX2_SIGN: lambda: _avx2(AVX2_SIGN),
    AVX2_U8S8: lambda: _avx2(AVX2_U8S8),
    VNNI: _vnni,
    SDOT: _sdot,
    NEON: _neon,
}


def register() -> None:
    """Register every intrinsic once per process (TensorIntrin.register refuses duplicates).

    Called before a template tensorizes and before a log's traces are replayed. The TVMScript is
    parsed here rather than at import: parsing during an import walks frozen import frames, which
    is slow (see tvm_mobilenet/tune/startup.py)."""
    for intrinsic, implementation in IMPLEMENTATIONS.items():
        if TensorIntrin.get(intrinsic.name, allow_missing=True) is None:
            description = _description(intrinsic.lanes, intrinsic.depth, intrinsic.activation)
            TensorIntrin.register(intrinsic.name, description, implementation())
