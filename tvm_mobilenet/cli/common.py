"""Shared command-line flags and the error handling of every CLI (typed errors -> exit 2)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from tvm_mobilenet.errors import ModelSpecError, TvmMobilenetError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus exit code 2), without the usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


BUILTIN_DEFAULTS = {"alpha": 1.0, "resolution": 224, "batch": 1}


def add_model_args(
    parser: argparse.ArgumentParser, weights: bool = True, files: bool = True
) -> None:
    """The built-in MobileNet's flags, and with `files` --model FILE / --input-shape for a model
    file."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--alpha",
        type=float,
        default=BUILTIN_DEFAULTS["alpha"],
        help="width multiplier, 0 < alpha <= 1 (default 1.0)",
    )
    group.add_argument(
        "--resolution",
        type=int,
        default=BUILTIN_DEFAULTS["resolution"],
        help="input height = width, a multiple of 32 (default 224)",
    )
    group.add_argument(
        "--batch", type=int, default=BUILTIN_DEFAULTS["batch"], help="batch size (default 1)"
    )
    if weights:
        group.add_argument(
            "--weights",
            type=Path,
            metavar="FILE.npz",
            help="weights to build the model with (default: generated from --seed)",
        )
        group.add_argument(
            "--seed", type=int, default=0, help="seed of the generated weights (default 0)"
        )
    if files:
        group.add_argument(
            "--model",
            type=Path,
            metavar="FILE",
            help="use this model file instead of the built-in MobileNet: .onnx, .tflite, or .pt2 "
            "(a torch.export program saved with torch.export.save)",
        )
        group.add_argument(
            "--input-shape",
            metavar="SHAPE",
            help="the model file's input shape in its own layout, e.g. 1,3,224,224 "
            "(default: read from the file; "
            "needed when the file's shape is dynamic)",
        )
        add_trust_flag(group)


TRUST_HELP = (
    "read a .pt2 model file even though loading one can run code it holds (torch.export.load "
    "unpickles): only for files whose origin you trust"
)


def add_trust_flag(group) -> None:
    group.add_argument("--trust-model-file", action="store_true", help=TRUST_HELP)


def add_precision_args(parser: argparse.ArgumentParser) -> None:
    """--precision, --calibration, --int8-arithmetic and --int8-multiply (see README, "int8")."""
    group = parser.add_argument_group("int8")
    group.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="int8: quantize the built-in MobileNet (post-training, TFLite's scheme) and compile "
        "integer kernels (an int8 --model file is int8 by itself; default fp32)",
    )
    group.add_argument(
        "--calibration",
        type=Path,
        metavar="FILE.npy",
        help="with --precision int8: a batch of NCHW float images to calibrate on "
        "(default: 8 deterministic synthetic images)",
    )
    group.add_argument(
        "--int8-arithmetic",
        choices=("tflite", "xnnpack"),
        help="requantization of int8 models: tflite = TFLite's fixed point (its builtin "
        "kernels, bit for bit), xnnpack = XNNPACK's float rounding (what TFLite runs on x86, "
        "bit for bit); default xnnpack on x86, tflite on ARM and Mali",
    )
    group.add_argument(
        "--int8-multiply",
        choices=("exact", "saturating"),
        default="exact",
        help="x86 AVX2 int8 pointwise kernels: exact (default; equal to TFLite bit for bit) or "
        "saturating, as ONNX Runtime multiplies (vpmaddubsw on uint8 activations: ~1.4x faster "
        "kernels, int16 pair sums clipped, outputs checked within one step of the reference)",
    )


def add_target_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target")
    group.add_argument(
        "--target",
        default="x86",
        help="target family: a file in targets/ (x86, arm, mali; default x86)",
    )
    group.add_argument(
        "--device",
        help="named device of the target (default: the family's default, x86: this host)",
    )
    group.add_argument(
        "--log-dir",
        type=Path,
        help="tuning log directory (default tuning_logs/<target>/<device>/<model>/; for "
        "the x86 host, <device> also names the CPU and cores, e.g. "
        "host-rocketlake-2c/mobilenet_v1-1.0-224-b1)",
    )


def add_rpc_args(parser: argparse.ArgumentParser, ndk: bool = True) -> None:
    group = parser.add_argument_group("remote devices (TVM RPC)")
    group.add_argument(
        "--rpc-tracker",
        metavar="HOST:PORT",
        help="the RPC tracker of the device farm (default: TVM_TRACKER_HOST/TVM_TRACKER_PORT)",
    )
    group.add_argument(
        "--rpc-key",
        help="device key at the tracker (default: TVM_TRACKER_KEY, else the device name)",
    )
    group.add_argument(
        "--rpc-timeout",
        type=float,
        metavar="SEC",
        help="seconds one remote candidate or run may take before it is given up (default 120)",
    )
    if ndk:
        group.add_argument(
            "--ndk-cc",
            metavar="CLANG++",
            help="Android NDK compiler for Android devices (default: TVM_NDK_CC)",
        )


def add_device_build_args(
    parser: argparse.ArgumentParser, weights: bool = True, files: bool = True, rpc: bool = True
) -> None:
    """The flags of the commands that build the model for a device (tune, compile, verify): the
    model (see add_model_args), --target/--device/--log-dir, int8 and, with `rpc`, the farm."""
    add_model_args(parser, weights=weights, files=files)
    add_target_args(parser)
    add_precision_args(parser)
    if rpc:
        add_rpc_args(parser)


def add_strassen_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-strassen",
        action="store_true",
        help="keep the wide 1x1 layers on their templates: by default an x86 build runs the "
        "float32 1x1 layers with >= 128 input and output channels (AVX2: and >= 96 pixels per "
        "core) as one-level Strassen kernels (7/8 of the multiply-adds; not tuned, so tune skips "
        "them too)",
    )


def rpc_settings(args, device=None):
    """RpcSettings from --rpc-tracker/--rpc-key (or TVM's environment variables); None if no tracker
    given.

    The key defaults to the device's name (rasp4b, ...).
    """
    import os

    from tvm_mobilenet.farm.tracker import parse_tracker, tracker_from_env
    from tvm_mobilenet.tune.measure import RPC_TIMEOUT_SEC, RpcSettings

    tracker = parse_tracker(args.rpc_tracker) if args.rpc_tracker else tracker_from_env()
    if tracker is None:
        return None
    key = args.rpc_key or os.environ.get("TVM_TRACKER_KEY") or (device.name if device else None)
    if not key:
        raise TvmMobilenetError(
            f"--rpc-key KEY is needed with --rpc-tracker {tracker} (the key the devices "
            "registered under; see `python -m tvm_mobilenet.farm status`)"
        )
    return RpcSettings(tracker, key, args.rpc_timeout or RPC_TIMEOUT_SEC)


def model_config(args):
    from tvm_mobilenet.model.architecture import ModelConfig

    return ModelConfig(alpha=args.alpha, resolution=args.resolution, batch=args.batch)


def _int8_options(args, device):
    from tvm_mobilenet.schedules.templates import int8_options

    return int8_options(device.schedule_family, device.target, args.int8_arithmetic)


def _check_precision_flags(args) -> None:
    if getattr(args, "calibration", None) is not None and args.precision != "int8":
        raise ModelSpecError("--calibration applies to --precision int8")
    if getattr(args, "model", None) is not None and args.precision == "int8":
        raise ModelSpecError(
            f"--precision int8 quantizes the built-in MobileNet; --model {args.model.name} is "
            "used as it is (an int8 TFLite or QDQ ONNX file is compiled to int8 kernels by itself)"
        )


def model_source(args, device=None):
    """The ModelSource the flags name: the file of --model, else the built-in MobileNet (int8 with
    --precision int8; int8 options for `device`, a DeviceSpec)."""
    from tvm_mobilenet.model.source import BuiltinMobileNet, ModelFile

    has_precision = hasattr(args, "precision")
    if has_precision:
        _check_precision_flags(args)
    int8 = _int8_options(args, device) if has_precision and device is not None else None
    if getattr(args, "model", None) is None:
        if getattr(args, "input_shape", None) is not None:
            raise ModelSpecError(
                "--input-shape applies to --model FILE; the built-in MobileNet takes "
                "--batch and --resolution"
            )
        quantize = has_precision and args.precision == "int8"
        return BuiltinMobileNet(
            model_config(args),
            getattr(args, "weights", None),
            getattr(args, "seed", 0),
            int8=int8 if quantize else None,
            calibration_file=args.calibration if quantize else None,
        )
    builtin_only = [
        f"--{name}" for name, default in BUILTIN_DEFAULTS.items() if getattr(args, name) != default
    ]
    if getattr(args, "weights", None) is not None:
        builtin_only.append("--weights")
    if builtin_only:
        raise ModelSpecError(
            f"{', '.join(builtin_only)} apply to the built-in MobileNet, not to --model "
            f"{args.model.name} (its weights and shape come from the file; see --input-shape)"
        )
    from tvm_mobilenet.model.importers import parse_shape

    shape = parse_shape(args.input_shape) if args.input_shape is not None else None
    return ModelFile(args.model, shape, int8, trusted=args.trust_model_file)


def model_device_and_log_dir(args, reading: bool = False):
    """The ModelSource, the DeviceSpec from --target/--device, the log directory, and whether it
    was defaulted.

    The default directory is tuning_logs/<target>/<device>/<model>/ (one per model, int8 ones
    apart); commands that only read records (`reading`) fall back to the log shipped with the
    package.
    """
    from tvm_mobilenet.devices import load_device
    from tvm_mobilenet.schedules.templates import with_int8_multiply
    from tvm_mobilenet.tune.log import default_log_dir, log_dir_to_read

    device = load_device(args.target, args.device)
    if hasattr(args, "int8_multiply"):
        device = with_int8_multiply(device, args.int8_multiply)
    model = model_source(args, device)
    if getattr(args, "int8_multiply", "exact") != "exact" and model.int8 is None:
        fix = (
            f"--model {args.model.name} is a float model"
            if getattr(args, "model", None) is not None
            else "add --precision int8"
        )
        raise ModelSpecError(f"--int8-multiply applies to int8 models: {fix}")
    if args.log_dir is not None:
        return model, device, args.log_dir, False
    find = log_dir_to_read if reading else default_log_dir
    return model, device, find(device, model), True


def _caused_by_ctrl_c(err: BaseException | None) -> bool:
    """Ctrl-C, or an error raised while TVM's worker pools shut down because of one.

    (MetaSchedule's pool shutdown raises "cannot join current thread" on top of the
    KeyboardInterrupt.)
    """
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return True
        err = err.__context__
    return False


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a CLI body: a TvmMobilenetError becomes one line on stderr and exit code 2."""
    warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"
    try:
        code = main()
    except TvmMobilenetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except BaseException as err:
        if not _caused_by_ctrl_c(err):
            raise
        print(
            "interrupted: every record measured so far is kept; run the same command to resume",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)
