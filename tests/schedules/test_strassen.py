"""One-level Strassen for wide 1x1 layers: the scheme, the kernel against float64, which layers
take it, and the rewrite of a fused model."""

import numpy as np
import pytest
import tvm
from tvm import relax

from tvm_mobilenet.bench.profile import kernel_kind
from tvm_mobilenet.model.architecture import ModelConfig, layers
from tvm_mobilenet.model.source import load_model
from tvm_mobilenet.schedules import arm_cpu, strassen, x86
from tvm_mobilenet.tasks.extract import extract_tasks, fuse
from tvm_mobilenet.tasks.strassen import strassen_tasks, use_strassen

ACTIVATIONS = {
    "none": lambda y: y,
    "relu": lambda y: np.maximum(y, 0),
    "relu6": lambda y: np.clip(y, 0, 6),
}


def target(mcpu: str, cores: int) -> tvm.target.Target:
    return tvm.target.Target({"kind": "llvm", "mcpu": mcpu, "num-cores": cores})


def params(mcpu: str, cores: int):
    return x86.params_for(target(mcpu, cores))


def runnable(cores: int) -> tvm.target.Target:
    """This machine's CPU with `cores` cores: code the tests run (a kernel planned for AVX-512 is
    generic TIR, so its numbers are checked on an AVX2-only CPU too; its AVX-512 code compiles)."""
    return target(str(tvm.target.codegen.llvm_get_system_cpu()), cores)


def strassen_in_numpy(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The tables' scheme in float64: seven products from the input sums and packed operands."""
    half, k2 = a.shape[0] // 2, a.shape[1] // 2
    quadrant = {
        (r, k): a[r * half : (r + 1) * half, k * k2 : (k + 1) * k2] for r in (0, 1) for k in (0, 1)
    }
    rows = {"top": 0, "bottom": 1}
    sums = [
        quadrant[rows[x[0]], x[1]] + (1 if op == "+" else -1) * quadrant[rows[y[0]], y[1]]
        for x, op, y in strassen.INPUT_SUMS
    ]
    operands = strassen.pack_operands(w, 8).astype(np.float64)  # [7, N/2/8, K/2, 8]
    c = np.full((a.shape[0], w.shape[1]), np.nan)
    n2 = w.shape[1] // 2
    for index, (operand, outputs) in enumerate(strassen.PRODUCTS):
        left = sums[operand[1]] if operand[0] == "sum" else quadrant[rows[operand[0]], operand[1]]
        right = operands[index].transpose(1, 0, 2).reshape(k2, n2)
        product = left @ right
        for half_name, n_half, op in outputs:
            block = c[
                rows[half_name] * half : (rows[half_name] + 1) * half,
                n_half * n2 : (n_half + 1) * n2,
            ]
            block[...] = product if op == "=" else block + (product if op[0] == "+" else -product)
    return c


def test_the_seven_products_give_the_matrix_product():
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((14, 32)), rng.standard_normal((32, 48))
    np.testing.assert_allclose(strassen_in_numpy(a, w), a @ w, atol=2e-5)  # float32 operands
    # Each quadrant's last contribution is marked: the bias and activation go there, once.
    finals = [
        (h, n) for _, outputs in strassen.PRODUCTS for h, n, op in outputs if op.endswith("!")
    ]
    assert sorted(finals) == [("bottom", 0), ("bottom", 1), ("top", 0), ("top", 1)]


@pytest.mark.parametrize(
    "height,in_channels,out_channels,activation,mcpu,cores",
    [
        (8, 128, 128, "relu", "skylake-avx512", 2),  # 16 pixels per half: 7 x 2 tiles + 2 rows
        (14, 256, 128, "relu6", "skylake-avx512", 1),  # one core: 98 pixels per half
        (14, 128, 256, "none", "haswell", 2),  # AVX2: 6 x 16 tiles + 1 row, prefetching
        (28, 128, 128, "relu", "skylake-avx512", 2),  # 196 pixels per half in 4 blocks
    ],
)
def test_kernel_matches_float64(height, in_channels, out_channels, activation, mcpu, cores):
    conv = strassen.plan(height, height, in_channels, out_channels, activation, params(mcpu, cores))
    assert conv is not None and conv.cores == cores
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, height, height, in_channels)).astype("float32")
    w = (rng.standard_normal((in_channels, out_channels)) / np.sqrt(in_channels)).astype("float32")
    bias = rng.standard_normal((1, 1, 1, out_channels)).astype("float32")
    out = tvm.runtime.tensor(np.full((1, height, height, out_channels), np.nan, "float32"))
    kernel = tvm.IRModule({"main": conv.kernel().with_attr("global_symbol", "main")})
    tvm.compile(kernel, target=target(mcpu, cores))  # the planned CPU's code builds
    lib = tvm.compile(kernel, target=runnable(cores))
    operands = strassen.pack_operands(w, conv.tile_channels)
    lib.mod["main"](*[tvm.runtime.tensor(x) for x in (a, operands, bias)], out)
    expected = a.reshape(-1, in_channels).astype(np.float64) @ w + bias.reshape(-1)
    expected = ACTIVATIONS[activation](expected).reshape(out.shape)
    assert np.max(np.abs(out.numpy() - expected)) < 2e-5  # every element written, none NaN


def test_which_mobilenet_layers_run_as_strassen():
    """At 1.0/224 on 2 cores: the 1x1 layers with >= 128 input and output channels whose map
    splits into two halves per core; the 7x7 layers (49 pixels) and the narrow early ones stay."""
    pointwise = [layer for layer in layers(ModelConfig()) if layer.kind == "pointwise"]

    def taken(p):
        shapes = {(layer.in_size, layer.in_channels, layer.out_channels) for layer in pointwise}
        return {(size, i, o) for size, i, o in shapes if strassen.plan(size, size, i, o, "relu", p)}

    wide = {(56, 128, 128), (28, 128, 256), (28, 256, 256), (14, 256, 512), (14, 512, 512)}
    assert taken(params("skylake-avx512", 2)) == wide
    assert taken(params("haswell", 2)) == wide
    assert taken(params("skylake-avx512", 1)) == wide
    # Where builds use it: x86 (NEON not measured)
    assert params("skylake-avx512", 2).strassen and params("haswell", 2).strassen
    assert not arm_cpu.params_for(target("skylake-avx512", 2)).strassen


@pytest.mark.parametrize("size,cores,avx2_takes_it", [(14, 2, True), (12, 2, False), (8, 1, False)])
def test_avx2_leaves_small_maps_per_core_to_the_template(size, cores, avx2_takes_it):
    """AVX2 takes only maps with >= 96 pixels per core (14x14 on 2 cores: 98; 12x12: 72); AVX-512
    takes them all."""
    assert strassen.plan(size, size, 512, 512, "relu", params("skylake-avx512", cores))
    planned = strassen.plan(size, size, 512, 512, "relu", params("haswell", cores))
    assert (planned is not None) == avx2_takes_it


def test_avx2_kernels_prefetch_the_weights_ahead_into_l2():
    """AVX2's kernel prefetches the weight block two ahead (prefetcht1: into L2); AVX-512's not."""

    def prefetches(mcpu: str) -> int:
        conv = strassen.plan(14, 14, 512, 512, "relu", params(mcpu, 2))
        kernel = tvm.IRModule({"main": conv.kernel().with_attr("global_symbol", "main")})
        return (
            tvm.compile(kernel, target=target(mcpu, 2))
            .mod.inspect_source("asm")
            .count("prefetcht1")
        )

    assert prefetches("haswell") > 0 and prefetches("skylake-avx512") == 0


def test_blocks_keep_the_input_sums_in_cache():
    conv = strassen.plan(56, 56, 128, 128, "relu", params("skylake-avx512", 2))
    assert (conv.half, conv.columns) == (784, 7)
    assert conv.block_tiles(112) == 28  # 196 rows: 5 x 196 x 64 floats = 245 KB
    conv = strassen.plan(14, 14, 512, 512, "relu", params("skylake-avx512", 2))
    assert conv.block_tiles(7) == 7  # the whole half: 5 x 49 x 256 floats = 245 KB


def one_layer(height: int, channels: int, activation) -> tuple[tvm.IRModule, dict]:
    rng = np.random.default_rng(2)
    arrays = {
        "w": (rng.standard_normal((1, 1, channels, channels)) / np.sqrt(channels)).astype(
            "float32"
        ),
        "b": rng.standard_normal((1, 1, 1, channels)).astype("float32"),
    }
    builder = relax.BlockBuilder()
    data = relax.Var("data", relax.TensorType((1, height, height, channels), "float32"))
    with builder.function("main", [data]):
        with builder.dataflow():
            y = builder.emit(
                relax.op.nn.conv2d(
                    data, relax.const(arrays["w"]), data_layout="NHWC", kernel_layout="HWIO"
                )
            )
            y = builder.emit(relax.op.add(y, relax.const(arrays["b"])))
            out = builder.emit_output(activation(y))
        builder.emit_func_output(out)
    return builder.get(), arrays


@pytest.mark.parametrize(
    "name,activation",
    [
        ("relu", relax.op.nn.relu),
        ("relu6", lambda y: relax.op.clip(y, 0, 6)),
        ("none", lambda y: y),
    ],
)
def test_the_rewrite_takes_conv_bias_and_activation_and_computes_them(name, activation):
    mod, arrays = one_layer(8, 128, activation)
    tgt = target("skylake-avx512", 2)
    rewritten = use_strassen(fuse(mod, tgt), tgt, "x86")
    kernels = [
        gv.name_hint for gv, f in rewritten.functions.items() if isinstance(f, tvm.tirx.PrimFunc)
    ]
    assert len(kernels) == 1 and kernels[0].endswith("_strassen")
    assert kernel_kind(kernels[0], []) == "pointwise"
    here = runnable(2)
    with here:
        vm = relax.VirtualMachine(relax.build(rewritten, target=here), tvm.cpu())
    x = np.random.default_rng(3).standard_normal((1, 8, 8, 128)).astype("float32")
    expected = x.reshape(64, 128).astype(np.float64) @ arrays["w"][0, 0] + arrays["b"].reshape(-1)
    out = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert np.max(np.abs(out - ACTIVATIONS[name](expected).reshape(out.shape))) < 2e-5


def test_other_computations_keep_their_functions():
    """A 1x1 conv followed by something else (here a sigmoid) is not the kernel's computation."""
    mod, _ = one_layer(8, 128, relax.op.sigmoid)
    tgt = target("skylake-avx512", 2)
    fused = fuse(mod, tgt)
    assert use_strassen(fused, tgt, "x86").same_as(fused)
    relu = fuse(one_layer(8, 128, relax.op.nn.relu)[0], tgt)
    assert use_strassen(relu, tgt, "arm_cpu").same_as(relu)  # a family without Strassen


def test_tuning_leaves_out_the_layers_compile_runs_as_strassen():
    tgt = target("skylake-avx512", 2)
    tasks = extract_tasks(load_model(ModelConfig(0.25, 128))[0], tgt)
    taken = strassen_tasks(tasks, tgt, "x86")
    assert [(t.shape, t.weight) for t in taken] == [("1x8x8x128 k1x1 s1 ->128", 5)]
    assert not strassen_tasks(tasks, tgt, "arm_cpu")  # NEON: not measured
    assert not strassen_tasks(taken, tgt, None)  # a stock build has no Strassen either
