"""Typed errors of tvm_mobilenet; only the CLI layer turns them into messages and exit codes."""


class TvmMobilenetError(Exception):
    """Base class: a problem the user can fix. The message says what is wrong and what to do."""


class ModelSpecError(TvmMobilenetError, ValueError):
    """Bad model options (width multiplier, resolution, batch)."""


class WeightsError(TvmMobilenetError, ValueError):
    """A weights file that is missing, unreadable, or has wrong names or shapes."""


class TargetSpecError(TvmMobilenetError, ValueError):
    """Unknown target or device, or a malformed file in targets/."""


class TuningLogError(TvmMobilenetError):
    """A log directory that is unreadable or was made for another target or model."""


class TuningError(TvmMobilenetError):
    """Tuning could not produce a valid candidate for a task."""


class VerificationError(TvmMobilenetError):
    """A compiled module disagrees with the float64 reference."""


class ModuleLoadError(TvmMobilenetError):
    """A compiled module or input file that cannot be loaded."""


class ModelImportError(TvmMobilenetError, ValueError):
    """A model file that cannot be imported: unreadable, unsupported operator, unknown input
    shape."""


class SourceCheckUnavailable(TvmMobilenetError):
    """The source framework's runtime is not installed, so a compiled model file cannot be
    checked."""


class FarmUnavailableError(TvmMobilenetError):
    """No RPC tracker, no device under the key, or the emulated device is not set up."""


class CrossCompilerError(TvmMobilenetError):
    """The cross compiler of a device is not installed or not configured."""


class IntegerizeError(ModelImportError):
    """A quantized model with an operator (or form) the int8 rewrite does not support; the message
    names it."""


class CalibrationError(TvmMobilenetError, ValueError):
    """A calibration file that is missing, unreadable, or of the wrong shape."""


class OutputPathError(TvmMobilenetError, ValueError):
    """An output path that is a directory, one of the command's inputs, or cannot be written."""


class WarmStartError(TvmMobilenetError, ValueError):
    """A --warm-start log that is not a log, or was made for another target family."""


class InstructionCountError(TvmMobilenetError):
    """A program run under qemu's instruction-counting plugin failed or did not finish."""


class LayerMatchError(TvmMobilenetError):
    """Our module and a peer's graph of the model do not have the same convolutions."""
