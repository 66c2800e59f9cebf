"""One-level Strassen for 1x1 convolutions on CPUs: seven half-size products instead of eight.

A 1x1 convolution is a matrix product, C[pixels, N] = A[pixels, K] @ W[K, N]. With A, W and C cut
in halves (pixels, K and N), Strassen's scheme forms C's quadrants from seven half-size products
instead of eight, saving 1/8 of the multiply-adds for additions of half-size matrices:

    M1 = (A11 + A22)(W11 + W22)     C11 = M1 + M4 - M5 + M7
    M2 = (A21 + A22) W11            C12 = M3 + M5
    M3 = A11 (W12 - W22)            C21 = M2 + M4
    M4 = A22 (W21 - W11)            C22 = M1 - M2 + M3 + M6
    M5 = (A11 + A12) W22
    M6 = (A21 - A11)(W11 + W12)
    M7 = (A12 - A22)(W21 + W22)

The weight sums are constants (`pack_operands`, at compile time); the five input sums are formed
per call, first; each product's register tile is added into its output quadrants, and the last
product to reach a quadrant applies the bias and activation there. The layers that use it are at
FMA peak already (schedules/x86.py), so only doing less work makes them faster.

Each core runs the whole scheme on its own part of the pixels, as `cpu._pixels_per_core` splits
them: the part a core writes is the part the next layers read on it. So every core reads all the
weight operands, and where they arrive from memory slower than the tiles consume them a family can
have each tile pass prefetch a share of a later block (`CpuParams.strassen_prefetch`) and leave maps
with few pixels per core to the template (`CpuParams.strassen_min_pixels`): AVX2 does both.

Measured on a 2-core AMD EPYC (Zen 4, znver4), 2026-11-27, each kernel alone and warm, 1 thread,
against the template's untuned schedule: 14x14x512 804 vs 884 us, 28x28x256 816 vs 896, 14x14x256
-> 512 404 vs 444, 56x56x128 859 vs 904, 28x28x128 -> 256 418 vs 448, 14x14x128 52 vs 56; with
64 input channels level (56x56x64 -> 128: 446 vs 454) and 32 slower (112x112x32 -> 64: 527 vs
466), hence `MIN_CHANNELS`. Not the 7x7 layers (tried with the odd halves zero-padded and the cores
sharing each product's channels): alone and warm 809 vs 905 us (7x7x1024), in the model level or
slower (903 vs 909, 472 vs 462), their 1.75x larger weight operands then coming from memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm

from .cpu import CpuParams, pixel_tile

# A block's input sums (5 x its rows x K/2 floats) at most this size, so they stay in L2: with its
# whole half at once (1 MB per core) the 56x56x128 layer ran 3.5 % slower than the template in the
# model (923 vs 892 us at 1 thread), in blocks of 196 rows (245 KB) 1 % faster (882).
SUMS_BYTES = 256 << 10
# Inputs and outputs of at least this many channels: below, the sums cost what the product saves.
MIN_CHANNELS = 128
CACHE_LINE_FLOATS = 16  # 64-byte cache lines

# Each product: its A operand (an input sum, or a quadrant of A: rows "top"/"bottom", K half) and
# the output quadrants (rows, N half) it goes to: "=" first write, "+"/"-" add or subtract, "!"
# the last contribution (then bias and activation).
_SUM = "sum"
PRODUCTS = (
    ((_SUM, 0), (("top", 0, "="), ("bottom", 1, "="))),
    ((_SUM, 1), (("bottom", 0, "="), ("bottom", 1, "-"))),
    (("top", 0), (("top", 1, "="), ("bottom", 1, "+"))),
    (("bottom", 1), (("top", 0, "+"), ("bottom", 0, "+!"))),
    ((_SUM, 2), (("top", 0, "-"), ("top", 1, "+!"))),
    ((_SUM, 3), (("bottom", 1, "+!"),)),
    ((_SUM, 4), (("top", 0, "+!"),)),
)
# The five input sums, as (rows, K half) terms: A11 + A22, A21 + A22, A11 + A12, A21 - A11,
# A12 - A22.
INPUT_SUMS = (
    (("top", 0), "+", ("bottom", 1)),
    (("bottom", 0), "+", ("bottom", 1)),
    (("top", 0), "+", ("top", 1)),
    (("bottom", 0), "-", ("top", 0)),
    (("top", 1), "-", ("bottom", 1)),
)
# Activations after the bias, as TVMScript of the biased value `v`.
ACTIVATIONS = {
    "none": "{v}",
    "relu": "T.max({v}, T.float32(0))",
    "relu6": "T.min(T.max({v}, T.float32(0)), T.float32(6))",
}


def pack_operands(weight: np.ndarray, tile_channels: int) -> np.ndarray:
    """The seven products' weight operands of a [K, N] weight, each packed per `tile_channels`
    output channels: [7, N/2/tile_channels, K/2, tile_channels]."""
    k, n = weight.shape
    w = weight.astype(np.float32)
    w11, w12, w21, w22 = (
        w[: k // 2, : n // 2],
        w[: k // 2, n // 2 :],
        w[k // 2 :, : n // 2],
        w[k // 2 :, n // 2 :],
    )
    operands = (w11 + w22, w11, w12 - w22, w21 - w11, w22, w11 + w12, w21 + w22)
    blocks = n // 2 // tile_channels
    return np.stack(
        [
            np.ascontiguousarray(o.reshape(k // 2, blocks, tile_channels).transpose(1, 0, 2))
            for o in operands
        ]
    )


@dataclass(frozen=True)
class StrassenConv:
    """A 1x1 convolution over an NHWC map with bias and activation, as the kernel computes it."""

    height: int
    width: int
    in_channels: int
    out_channels: int
    activation: str  # a key of ACTIVATIONS
    cores: int  # parts of the pixels, one per core
    columns: int  # register tile: pixels
    tile_channels: int  # register tile: output channels (vectors x lanes)
    prefetch: int = 0  # weight blocks ahead each tile pass prefetches a share of (0: none)

    @property
    def half(self) -> int:
        """Pixels in each half of a core's part."""
        return self.height * self.width // self.cores // 2

    def block_tiles(self, tiles: int) -> int:
        """Register tiles of rows per block: the most that divide `tiles` with the block's input
        sums within SUMS_BYTES (all seven products run over a block before the next)."""
        row_bytes = len(INPUT_SUMS) * self.in_channels // 2 * 4
        rows_fit = max(SUMS_BYTES // row_bytes, self.columns)
        return max(
            d for d in range(1, tiles + 1) if tiles % d == 0 and d * self.columns <= rows_fit
        )

    def kernel(self) -> tvm.tirx.PrimFunc:
        return tvm.script.from_source(_Source(self).text())


def plan(
    height: int, width: int, in_channels: int, out_channels: int, activation: str, params: CpuParams
):
    """The Strassen kernel for this layer on a CPU of `params`, or None where it does not pay (few
    channels; few pixels per core where the family says so) or does not fit (a core's part not
    split in two halves of whole register tiles' width in channels)."""
    cores = max(params.cores, 1)
    pixels = height * width
    if min(in_channels, out_channels) < MIN_CHANNELS or in_channels % 2 or pixels % (2 * cores):
        return None
    if pixels // cores < params.strassen_min_pixels:
        return None
    half = pixels // cores // 2
    columns, vectors = pixel_tile(half, out_channels // 2 // params.lanes, params)
    tile_channels = vectors * params.lanes
    if (out_channels // 2) % tile_channels or half < params.max_columns:
        return None
    return StrassenConv(
        height,
        width,
        in_channels,
        out_channels,
        activation,
        cores,
        columns,
        tile_channels,
        params.strassen_prefetch,
    )


class _Source:
    """The kernel's TVMScript. A[pixels, K] and C[pixels, N] are flat views of the NHWC buffers;
    core c owns pixels [c * part, (c + 1) * part), its "top" half then its "bottom" half."""

    def __init__(self, conv: StrassenConv):
        self.conv = conv
        self.lines: list[str] = []

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def rows(self, half: str, row: str) -> str:
        c = self.conv
        start = 0 if half == "top" else c.half
        return f"c * {2 * c.half} + {start} + {row}"

    def a(self, term, row: str, k: str) -> str:
        half, k_half = term
        return f"A[{self.rows(half, row)}, {k_half * (self.conv.in_channels // 2)} + {k}]"

    def text(self) -> str:
        c = self.conv
        k2, n2 = c.in_channels // 2, c.out_channels // 2
        hw = f"1, {c.height}, {c.width}"
        self.lines = ["@T.prim_func(private=True)"]
        self.emit(
            0,
            f'def main(A4: T.Buffer(({hw}, {c.in_channels}), "float32"), '
            f'W: T.Buffer((7, {n2 // c.tile_channels}, {k2}, {c.tile_channels}), "float32"), '
            f'bias4: T.Buffer((1, 1, 1, {c.out_channels}), "float32"), '
            f'C4: T.Buffer(({hw}, {c.out_channels}), "float32")):',
        )
        self.emit(1, 'T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})')
        pixels = c.height * c.width
        self.emit(1, f'A = T.decl_buffer(({pixels}, {c.in_channels}), "float32", data=A4.data)')
        self.emit(1, f'C = T.decl_buffer(({pixels}, {c.out_channels}), "float32", data=C4.data)')
        self.emit(1, f'bias = T.decl_buffer(({c.out_channels},), "float32", data=bias4.data)')
        if c.prefetch:
            weights = 7 * k2 * n2  # the seven operands, flat
            self.emit(1, f'Wf = T.decl_buffer(({weights},), "float32", data=W.data)')
        full, rest = divmod(c.half, c.columns)
        block_tiles = c.block_tiles(full)
        rows = max(block_tiles * c.columns, rest)
        sums = f"{c.cores}, {len(INPUT_SUMS)}, {rows}, {k2}"  # per core and block
        self.emit(1, f'S = T.alloc_buffer(({sums}), "float32", scope="global")')
        self.emit(1, f"for c in T.parallel({c.cores}):")
        if full:
            self.emit(2, f"for rb in range({full // block_tiles}):")
            self.block(3, f"rb * {block_tiles * c.columns}", block_tiles, c.columns)
        if rest:
            self.block(2, str(full * c.columns), 1, rest)
        return "\n".join(self.lines) + "\n"

    def block(self, depth: int, first_row: str, tiles: int, columns: int) -> None:
        """Rows [first_row, first_row + tiles * columns) of both halves: their input sums, then
        the seven products' register tiles over them."""
        k2 = self.conv.in_channels // 2
        self.emit(depth, f"for r in range({tiles * columns}):")
        self.emit(depth + 1, f"for k in T.vectorized({k2}):")
        row = f"{first_row} + r"
        for index, (left, op, right) in enumerate(INPUT_SUMS):
            self.emit(
                depth + 2,
                f"S[c, {index}, r, k] = {self.a(left, row, 'k')} {op} {self.a(right, row, 'k')}",
            )
        for product, (operand, outputs) in enumerate(PRODUCTS):
            self.emit(
                depth, f"for nt in range({self.conv.out_channels // 2 // self.conv.tile_channels}):"
            )
            self.emit(depth + 1, f"for pt in range({tiles}):")
            if self.conv.prefetch:
                self.prefetch(depth + 2, product, tiles)
            self.tile(depth + 2, product, operand, outputs, first_row, f"pt * {columns}", columns)

    def prefetch(self, depth: int, product: int, tiles: int) -> None:
        """Tile pass `pt` of weight block (product, nt) prefetches the pt-th of `tiles` shares of
        the block `prefetch` blocks ahead (into L2: locality 2)."""
        c = self.conv
        k2, blocks_per_product = c.in_channels // 2, c.out_channels // 2 // c.tile_channels
        block_floats = k2 * c.tile_channels
        lines = block_floats // CACHE_LINE_FLOATS
        share = -(-lines // tiles)
        ahead = f"({product} * {blocks_per_product} + nt + {c.prefetch}) % {7 * blocks_per_product}"
        line = f"T.min(pt * {share} + q, {lines - 1})"
        address = f"Wf[{ahead} * {block_floats} + {line} * {CACHE_LINE_FLOATS}]"
        self.emit(depth, f"for q in range({share}):")
        self.emit(
            depth + 1,
            f'T.evaluate(T.call_intrin("void", "tirx.prefetch", T.address_of({address}), 0, 2, 1))',
        )

    def tile(
        self,
        depth: int,
        product: int,
        operand,
        outputs,
        first_row: str,
        tile_row: str,
        columns: int,
    ) -> None:
        """One register tile of `columns` pixels by tile_channels, `tile_row` rows into the block
        that starts at `first_row` of each half."""
        c = self.conv
        k2, n2 = c.in_channels // 2, c.out_channels // 2
        row = f"{first_row} + {tile_row} + i"
        if operand[0] == _SUM:
            a = f"S[c, {operand[1]}, {tile_row} + i, k]"
        else:
            a = self.a(operand, row, "k")
        self.emit(
            depth,
            f'acc = T.alloc_buffer(({columns}, {c.tile_channels}), "float32", scope="global")',
        )
        self.loops(depth, columns, "acc[i, j] = T.float32(0)")
        self.emit(depth, f"for k in range({k2}):")
        self.loops(depth + 1, columns, f"acc[i, j] = acc[i, j] + {a} * W[{product}, nt, k, j]")
        updates = []
        for half, n_half, op in outputs:
            column = f"{n_half * n2} + nt * {c.tile_channels} + j"
            target = f"C[{self.rows(half, row)}, {column}]"
            value = "acc[i, j]" if op == "=" else f"{target} {op[0]} acc[i, j]"
            if op.endswith("!"):
                value = ACTIVATIONS[c.activation].format(v=f"{value} + bias[{column}]")
            updates.append(f"{target} = {value}")
        self.loops(depth, columns, *updates)

    def loops(self, depth: int, columns: int, *statements: str) -> None:
        self.emit(depth, f"for i in T.unroll({columns}):")
        self.emit(depth + 1, f"for j in T.vectorized({self.conv.tile_channels}):")
        for statement in statements:
            self.emit(depth + 2, statement)
