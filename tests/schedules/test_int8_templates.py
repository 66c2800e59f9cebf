"""int8 templates: every MobileNet depthwise and pointwise shape equals a numpy integer reference on
x86 (both arithmetics; heuristic knobs, and sampled ones as tuning explores them); the same layers
compile for ARM (sdot in the assembly of a +dotprod device, smull without) and AVX-512 VNNI
(vpdpbusd), and for Mali, where PoCL runs the OpenCL kernels and they equal the reference too;
x86's opt-in saturating multiply equals a numpy model of its saturation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir

from tvm_mobilenet.compile.build import build
from tvm_mobilenet.compile.opencl_check import kernel_launch
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.errors import TvmMobilenetError
from tvm_mobilenet.schedules.templates import (
    apply_template,
    int8_options,
    int8_params,
    template_kind,
    with_int8_multiply,
)
from tvm_mobilenet.tasks.extract import fuse

from ..int8_cases import all_layers, layer_case, layer_id

AVX2 = load_device("x86", "avx2")
# x86-64 without AVX2 (runs on any x86-64): no dot intrinsic, LLVM's widening multiplies
BASELINE = dataclasses.replace(AVX2, target_config={**AVX2.target_config, "mcpu": "x86-64"})
VNNI = load_device("x86", "avx512vnni")
SATURATING = with_int8_multiply(AVX2, "saturating")
SDOT = load_device("arm", "rk3588")
NEON = load_device("arm", "rasp4b")
MALI = load_device("mali", "rk3399-mali")
LAYERS = all_layers()
IDS = [layer_id(item) for item in LAYERS]
POINTWISE = [item for item in LAYERS if item[1].kind == "pointwise"]
ARITHMETICS = ("tflite", "xnnpack")


def data_dtype(layer, device) -> str:
    """What the rewrite feeds the layer: u8 into (padded) depthwise convolutions, the dot
    intrinsic's operand into pointwise ones (model/quantized.py's activation storage)."""
    if layer.kind == "depthwise":
        return "uint8"
    storage = int8_params(device.schedule_family, device.target).activation
    return "uint8" if storage == "uint8" else "int8"


def case_for(layer, device, arithmetic="xnnpack"):
    return layer_case(layer, data_dtype(layer, device), arithmetic)


def run_built(case, device) -> np.ndarray:
    executable = build(case.mod, device.target, None, device.schedule_family)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(case.data)).numpy()


def conv_function(case, device):
    """(fused conv PrimFunc, its arguments): weights packed as compilation packs them."""
    fused = fuse(case.mod, device.target)
    (call,) = [b.value for b in fused["main"].body.blocks[0].bindings]
    args = [case.data, *(arg.value.numpy() for arg in call.args[1].fields[1:])]
    return fused[call.args[0]].with_attr("global_symbol", "main"), args


def scheduled(func, device, tuning=False, seed=1) -> tvm.IRModule:
    sch = s_tir.Schedule(tvm.IRModule({"main": func}), seed=seed)
    kind = template_kind(sch.mod)
    apply_template(sch, kind, device.schedule_family, device.target, tuning)
    return sch.mod


def assembly(layer, device) -> str:
    func, _ = conv_function(case_for(layer, device), device)
    return tvm.compile(scheduled(func, device), target=device.target).mod.inspect_source("asm")


@pytest.mark.parametrize("arithmetic", ARITHMETICS)
@pytest.mark.parametrize("item", LAYERS, ids=IDS)
def test_heuristic_schedule_equals_numpy(item, arithmetic):
    case = case_for(item[1], AVX2, arithmetic)
    got = run_built(case, AVX2)
    assert got.dtype == case.expected.dtype
    assert np.array_equal(got, case.expected), np.mean(got == case.expected)


@pytest.mark.parametrize("item", LAYERS[::6], ids=IDS[::6])
def test_without_avx2_equals_numpy(item):
    case = case_for(item[1], BASELINE, "tflite")
    assert np.array_equal(run_built(case, BASELINE), case.expected)


@pytest.mark.parametrize("item", LAYERS[::5], ids=IDS[::5])
def test_sampled_knobs_equal_numpy(item):
    """Schedules the template search samples (other tiles, unroll steps) compute the same."""
    case = case_for(item[1], AVX2)
    func, args = conv_function(case, AVX2)
    for seed in (1, 2):
        lib = tvm.compile(scheduled(func, AVX2, tuning=True, seed=seed), target=AVX2.target)
        out = tvm.runtime.tensor(np.zeros(case.expected.shape, case.expected.dtype))
        lib["main"](*[tvm.runtime.tensor(a) for a in args], out)
        assert np.array_equal(out.numpy(), case.expected), seed


def test_pointwise_weights_are_packed_for_the_dot_intrinsic():
    func, _ = conv_function(case_for(POINTWISE[0][1], AVX2), AVX2)
    assert template_kind(tvm.IRModule({"main": func})) == "int8_conv"
    assert len(func.params[1].ty.shape) == 6  # [O/L][KH][KW][I/D][L][D]
    asm = assembly(POINTWISE[0][1], AVX2)
    assert "vpmaddubsw" in asm and "vpsignb" in asm


@pytest.mark.parametrize("item", POINTWISE[::2], ids=layer_id)
def test_saturating_multiply_equals_a_numpy_model_of_vpmaddubsw(item):
    """--int8-multiply saturating (x86 AVX2): uint8 activations times int8 weights by vpmaddubsw
    without the sign trick, bit for bit the numpy model of its int16 pair saturation; on these
    full-range random data the saturation shows (the exact result differs)."""
    layer = item[1]
    assert data_dtype(layer, SATURATING) == "uint8"
    case = layer_case(layer, "uint8", "xnnpack", saturating=True)
    exact = layer_case(layer, "uint8", "xnnpack").expected
    got = run_built(case, SATURATING)
    assert np.array_equal(got, case.expected), np.mean(got == case.expected)
    assert not np.array_equal(got, exact)
    asm = assembly(layer, SATURATING)
    assert "vpmaddubsw" in asm and "vpsignb" not in asm


def test_saturating_multiply_is_x86_only():
    """Only AVX2 without VNNI saturates: a VNNI CPU asked stays exact (vpdpbusd), ARM refuses."""
    assert int8_options("x86", SATURATING.target).multiply == "saturating"
    assert int8_options("x86", with_int8_multiply(VNNI, "saturating").target).multiply == "exact"
    assert with_int8_multiply(SDOT, "exact") is SDOT
    with pytest.raises(TvmMobilenetError, match="int8-multiply saturating is for x86"):
        with_int8_multiply(SDOT, "saturating")


@pytest.mark.parametrize("item", LAYERS, ids=IDS)
def test_arm_dotprod_compiles_with_sdot(item):
    asm = assembly(item[1], SDOT)
    if item[1].kind == "pointwise":
        assert "sdot" in asm
    else:  # depthwise: no dot product, LLVM's widening multiply-adds
        assert "smlal" in asm or "mla" in asm


@pytest.mark.parametrize("item", POINTWISE[::3], ids=layer_id)
def test_arm_without_dotprod_and_avx512_vnni_compile(item):
    layer = item[1]
    neon = assembly(layer, NEON)
    assert "smull" in neon and "sdot" not in neon
    assert "vpdpbusd" in assembly(layer, VNNI)


@pytest.mark.parametrize("device", [AVX2, SATURATING, VNNI, SDOT, NEON], ids=lambda d: d.label)
def test_dot_intrinsics_allocate_nothing_in_the_kernel(device):
    """The tensorized pointwise kernel keeps the intrinsic's values in registers: no workspace
    allocation per iteration (TVMScript's `x = expr` in an intrinsic made one per value and
    iteration, which made large-map int8 pointwise kernels ~20x slower than fp32; intrin.py)."""
    layer = next(item[1] for item in POINTWISE if item[1].in_channels == 32)
    func, _ = conv_function(case_for(layer, device), device)
    for tuning in (False, True):
        llvm_ir = tvm.compile(scheduled(func, device, tuning), target=device.target).mod
        assert "TVMBackendAllocWorkspace" not in llvm_ir.inspect_source("ll"), tuning


@pytest.mark.parametrize("item", LAYERS, ids=IDS)
def test_mali_kernel_compiles(item):
    func, _ = conv_function(case_for(item[1], MALI, "tflite"), MALI)
    source = tvm.compile(scheduled(func, MALI), target=MALI.target).mod.imports[0].inspect_source()
    assert "__kernel" in source and "int4" in source


MALI_ON_POCL = [item for item in LAYERS if item[0].alpha < 1] + POINTWISE[:2]


@pytest.mark.parametrize("item", MALI_ON_POCL, ids=layer_id)
def test_mali_kernel_equals_numpy_on_opencl(item, opencl):
    arithmetic = ARITHMETICS[MALI_ON_POCL.index(item) % 2]
    case = case_for(item[1], MALI, arithmetic)
    func, args = conv_function(case, MALI)
    launch = kernel_launch(scheduled(func, MALI), MALI.target)
    output = np.full(case.expected.shape, 77, case.expected.dtype)  # unwritten elements show
    got = opencl.run(launch, [*args, output], output=len(args))
    assert np.array_equal(got, case.expected), np.mean(got == case.expected)
