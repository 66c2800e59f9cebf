"""Check OpenCL kernels without the GPU they are for: run each generated convolution kernel through
pyopencl on any OpenCL device (PoCL on a CPU here) with the launch geometry the compiled module
uses, and compare with the float64 reference (float layers) or, exactly, with the unscheduled
function built for this CPU (int8 layers: integer arithmetic has one right answer).

TVM's OpenCL runtime is not in the PyPI builds, so the module itself cannot be loaded here; the
kernels are taken from its OpenCL C source and launched the way its host code would launch them."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import s_tir
from tvm.tirx import ForKind

from tvm_mobilenet.devices import DeviceSpec
from tvm_mobilenet.errors import TvmMobilenetError, VerificationError
from tvm_mobilenet.model import reference
from tvm_mobilenet.schedules.templates import apply_template, template_kind
from tvm_mobilenet.tasks.extract import Task
from tvm_mobilenet.tasks.weight_packing import hwio_shape
from tvm_mobilenet.tune.log import TuningLog

LAYER_TOLERANCE = 1e-4  # max abs error of one layer's output (inputs uniform in [-1, 1])
MAX_PRIVATE_FLOATS = 1024  # per work-item; more is a schedule bug, not a register budget
SETUP_HINT = "run `tvm-mobilenet setup opencl` (installs PoCL and pyopencl)"
KERNEL_RE = re.compile(r"__kernel\s+void\s+(\w+)\s*\(([^)]*)\)")
POINTER_ARG_RE = re.compile(r"__global\s+[\w\s]*\*\s*(?:restrict\s+)?(\w+)_ptr$")
PRIVATE_ARRAY_RE = re.compile(r"^\s*(?:float|int|uint)(\d*)\s+\w+\[(\d+)\];", re.MULTILINE)
AXES = "xyz"


@dataclass(frozen=True)
class KernelLaunch:
    """One OpenCL kernel of a scheduled function, as the module's host code launches it."""

    name: str
    source: str
    arg_params: tuple[int, ...]  # for each kernel argument, the index of the PrimFunc parameter
    global_size: tuple[int, ...]  # work-items per dimension = blockIdx extent * threadIdx extent
    local_size: tuple[int, ...]  # threadIdx extents (the work-group)

    @property
    def private_floats(self) -> int:
        """Floats (or int32) in the kernel's private arrays (accumulators): a Mali keeps them in
        registers only if this is small; an unbounded one (a whole feature map per work-item)
        overflows PoCL's stack."""
        return sum(
            int(width or 1) * int(count) for width, count in PRIVATE_ARRAY_RE.findall(self.source)
        )


@dataclass(frozen=True)
class LayerCheck:
    task: Task
    launch: KernelLaunch
    max_abs_error: float


def scheduled_function(task: Task, device: DeviceSpec, log: TuningLog | None) -> tvm.IRModule:
    """`task` scheduled as compile schedules it: the log's best record, else the template's
    default."""
    if log is not None:
        best = log.database.query_ir_module(task.mod, device.target, "main")
        if best is not None:
            return best
    sch = s_tir.Schedule(task.mod)
    apply_template(
        sch, template_kind(task.mod), device.schedule_family, device.target, tuning=False
    )
    return sch.mod


def thread_extents(mod: tvm.IRModule) -> dict[str, int]:
    """Extent of every loop bound to a GPU thread axis ("blockIdx.x" -> 4, ...) in `mod`'s main."""
    sch = s_tir.Schedule(mod)
    extents: dict[str, int] = {}
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        for loop in map(sch.get, sch.get_loops(block)):
            if loop.kind == ForKind.THREAD_BINDING:
                tag, extent = loop.thread_binding.thread_tag, int(loop.extent)
                if extents.setdefault(tag, extent) != extent:
                    raise TvmMobilenetError(
                        f"{tag} is bound to loops of extents {extents[tag]} and {extent}: "
                        "one launch per function is all this checker handles"
                    )
    return extents


def launch_geometry(extents: dict[str, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global size, local size) of an OpenCL launch from the thread-axis extents."""
    dims = max((AXES.index(tag[-1]) + 1 for tag in extents), default=1)
    local = tuple(extents.get(f"threadIdx.{axis}", 1) for axis in AXES[:dims])
    groups = tuple(extents.get(f"blockIdx.{axis}", 1) for axis in AXES[:dims])
    return tuple(g * n for g, n in zip(groups, local, strict=True)), local


def _argument_params(func: tvm.tirx.PrimFunc, kernel_args: str, kernel: str) -> tuple[int, ...]:
    """Map the kernel's `<buffer>_ptr` arguments to the function's parameter positions."""
    by_name = {param.name: index for index, param in enumerate(func.params)}
    positions = []
    for arg in (a.strip() for a in kernel_args.split(",")):
        match = POINTER_ARG_RE.search(arg)
        if match is None or match.group(1) not in by_name:
            raise TvmMobilenetError(
                f"kernel {kernel}: argument '{arg}' is not a buffer of the function"
            )
        positions.append(by_name[match.group(1)])
    return tuple(positions)


def kernel_launch(mod: tvm.IRModule, target: tvm.target.Target) -> KernelLaunch:
    """Build the scheduled function for `target` and read back its one OpenCL kernel."""
    source = tvm.compile(mod, target=target).mod.imports[0].inspect_source()
    kernels = dict(KERNEL_RE.findall(source))  # a prototype and a definition per kernel
    if len(kernels) != 1:
        raise TvmMobilenetError(
            f"expected one OpenCL kernel per function, the source has {sorted(kernels)}"
        )
    ((name, args),) = kernels.items()
    global_size, local_size = launch_geometry(thread_extents(mod))
    launch = KernelLaunch(
        name, source, _argument_params(mod["main"], args, name), global_size, local_size
    )
    if launch.private_floats > MAX_PRIVATE_FLOATS:  # checked before launching: PoCL would crash
        raise VerificationError(
            f"kernel {name} keeps {launch.private_floats} floats per work-item in private "
            f"arrays (> {MAX_PRIVATE_FLOATS}): the schedule's accumulators are not bounded"
        )
    return launch


class OpenclDevice:
    """The first OpenCL device pyopencl finds; TvmMobilenetError if there is none."""

    def __init__(self):
        try:
            import pyopencl as cl
        except ImportError:
            raise TvmMobilenetError(f"pyopencl is not installed: {SETUP_HINT}") from None
        devices = []
        with contextlib.suppress(cl.Error):  # the ICD loader finds no platform at all
            devices = [d for platform in cl.get_platforms() for d in platform.get_devices()]
        if not devices:
            raise TvmMobilenetError(f"no OpenCL device found: {SETUP_HINT}")
        self.cl, self.device = cl, devices[0]
        self.context = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.context)

    @property
    def name(self) -> str:
        return f"{self.device.platform.name.strip()}: {self.device.name.strip()}"

    def run(self, launch: KernelLaunch, arrays: list[np.ndarray], output: int) -> np.ndarray:
        """Launch the kernel on `arrays` (the function's parameters); returns parameter `output`."""
        cl = self.cl
        if int(np.prod(launch.local_size)) > self.device.max_work_group_size:
            raise TvmMobilenetError(
                f"work-group of {launch.local_size} exceeds {self.name}'s limit "
                f"{self.device.max_work_group_size}"
            )
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        buffers = [cl.Buffer(self.context, flags, hostbuf=array) for array in arrays]
        kernel = getattr(cl.Program(self.context, launch.source).build(), launch.name)
        kernel(
            self.queue,
            launch.global_size,
            launch.local_size,
            *(buffers[i] for i in launch.arg_params),
        )
        result = np.empty_like(arrays[output])
        cl.enqueue_copy(self.queue, result, buffers[output])
        self.queue.finish()
        return result


def check_layer(
    task: Task, launch: KernelLaunch, device: OpenclDevice, seed: int = 0
) -> LayerCheck:
    """Run one fused convolution kernel on random inputs and compare it with its reference: the
    float64 conv + bias + ReLU, or for int8 layers the unscheduled function on this CPU."""
    func = task.mod["main"]
    shapes = [tuple(int(d) for d in p.ty.shape) for p in func.params]
    rng = np.random.default_rng(seed)
    if str(func.params[0].ty.dtype) in ("int8", "uint8"):
        arrays = int8_arguments(func, rng)
        output = device.run(launch, arrays, output=len(arrays) - 1)
        expected = _unscheduled_output(task.mod, arrays)
        error = float(np.max(np.abs(output.astype(np.int64) - expected.astype(np.int64))))
        return LayerCheck(task, launch, error)
    data_shape, weight_shape, bias_shape, out_shape = shapes
    arrays = [
        rng.uniform(-1, 1, s).astype("float32") for s in (data_shape, weight_shape, bias_shape)
    ]
    arrays.append(
        np.full(out_shape, np.nan, "float32")
    )  # an element the kernel never writes shows up
    output = device.run(launch, arrays, output=3)
    expected = reference.conv_bias_relu_nhwc(
        *arrays[:3], task.kind == "depthwise", data_shape[1] // out_shape[1]
    )
    error = float(np.max(np.abs(output - expected)))
    return LayerCheck(task, launch, error if np.isfinite(error) else float("inf"))


def int8_arguments(func: tvm.tirx.PrimFunc, rng: np.random.Generator) -> list[np.ndarray]:
    """Random arguments of a fused int8 convolution, in model/quantized.py's epilogue order: data,
    weight, bias, then (multiplier, right shift[, left shift]) for TFLite's fixed point or a float
    scale for XNNPACK's, scaled so that outputs spread over the 8-bit range; the output last,
    filled with a value the epilogue's clamp never leaves there unless written (see below)."""
    params = [(tuple(int(d) for d in p.ty.shape), str(p.ty.dtype)) for p in func.params]
    (data_shape, data_dtype), (weight_shape, _), (bias_shape, _) = params[:3]
    info = np.iinfo(data_dtype)
    kh, kw, cin, _ = hwio_shape(list(weight_shape))
    depthwise = len(weight_shape) == 4 and weight_shape[3] == 1  # HWOI (kh, kw, C, 1)
    fan_in = kh * kw * (1 if depthwise else cin)
    # |acc| ~ sqrt(fan_in) * 74 * 73 (rms of uniform int8 data and weights): aim at ~64 out
    shift = int(np.ceil(np.log2(np.sqrt(fan_in) * 74 * 73 / 64)))
    channels = bias_shape[0]
    arrays = [
        rng.integers(info.min, info.max + 1, data_shape).astype(data_dtype),
        rng.integers(-127, 128, weight_shape).astype("int8"),
        rng.integers(-(1 << 14), 1 << 14, bias_shape).astype("int32"),
    ]
    epilogue = params[3:-1]
    if epilogue[0][1] == "float32":  # XNNPACK: rint(acc * scale)
        arrays.append((rng.uniform(0.5, 1.0, channels) * 2.0**-shift).astype("float32"))
    else:  # TFLite: multiplier in [2^30, 2^31), right shift, optional left shift (zero)
        arrays.append(rng.integers(1 << 30, (1 << 31) - 1, channels).astype("int32"))
        arrays.append(np.full(channels, shift, "int32"))
        arrays.extend(np.zeros(channels, "int32") for _ in epilogue[2:])
    out_shape, out_dtype = params[-1]
    arrays.append(np.full(out_shape, 77, out_dtype))  # 77: rare, and equal in both references
    return arrays


def _unscheduled_output(mod: tvm.IRModule, arrays: list[np.ndarray]) -> np.ndarray:
    """The function as legalization wrote it, built for this CPU and run on `arrays`."""
    lib = tvm.compile(mod, target="llvm")
    tensors = [tvm.runtime.tensor(a) for a in arrays]
    lib["main"](*tensors)
    return tensors[-1].numpy()


def check_tasks(
    tasks: list[Task],
    device_spec: DeviceSpec,
    log: TuningLog | None,
    opencl: OpenclDevice,
    on_layer: Callable[[LayerCheck], None] = lambda _: None,
    tolerance: float = LAYER_TOLERANCE,
) -> list[LayerCheck]:
    """Check every convolution task that has a template; VerificationError names the layers off."""
    checks = []
    for task in tasks:
        if template_kind(task.mod) is None:
            continue
        launch = kernel_launch(scheduled_function(task, device_spec, log), device_spec.target)
        checks.append(check_layer(task, launch, opencl))
        on_layer(checks[-1])
    bad = [c for c in checks if not c.max_abs_error <= tolerance]
    if bad:
        worst = max(bad, key=lambda c: c.max_abs_error)
        raise VerificationError(
            f"{len(bad)} of {len(checks)} OpenCL kernels disagree with the float64 reference on "
            f"{opencl.name}, "
            f"worst {worst.task.name} ({worst.task.kind} {worst.task.shape}): max abs error "
            f"{worst.max_abs_error:.3g} > {tolerance:g}"
        )
    return checks
