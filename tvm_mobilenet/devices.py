"""Targets as data: `targets/<family>.json` lists a family's named devices and their TVM settings.

Adding a device is adding an entry to that file. "auto" values are resolved on this machine
(`mcpu`: the host CPU as LLVM names it; `num-cores`: the cores this process may use)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import tvm

from tvm_mobilenet.errors import TargetSpecError
from tvm_mobilenet.resources import targets_dir
from tvm_mobilenet.run.threads import available_cores

TARGETS_DIR = targets_dir()

_FAMILY_KEYS = {"description", "schedule_family", "measure", "default_device", "devices"}
_DEVICE_KEYS = {"description", "target", "cross_compiler", "qemu_cpu"}
MEASURE_KINDS = ("local", "rpc")


@dataclass(frozen=True)
class DeviceSpec:
    """One named device of a target family, with its resolved TVM target settings."""

    family: str
    name: str
    description: str
    target_config: dict
    schedule_family: str
    measure: str  # "local" (this machine) or "rpc" (a device behind a tracker)
    cross_compiler: str | None = None
    qemu_cpu: str | None = None
    machine_class: str | None = None  # what "auto" resolved to here, e.g. "rocketlake-2c"

    @property
    def target(self) -> tvm.target.Target:
        return tvm.target.Target(self.target_config)

    @property
    def label(self) -> str:
        return f"{self.family}/{self.name}"

    @property
    def log_name(self) -> str:
        """The device's default log directory name: per machine class for "auto" devices, since
        records measured on one CPU are not the best schedules for another."""
        return f"{self.name}-{self.machine_class}" if self.machine_class else self.name


def families() -> list[str]:
    return sorted(path.stem for path in TARGETS_DIR.glob("*.json"))


def host_cpu() -> str:
    """This machine's CPU as LLVM names it: what `"mcpu": "auto"` resolves to (its CPU class)."""
    return str(tvm.target.codegen.llvm_get_system_cpu())


def _resolve_auto(config: dict) -> dict:
    resolved = dict(config)
    if resolved.get("mcpu") == "auto":
        resolved["mcpu"] = host_cpu()
    if resolved.get("num-cores") == "auto":
        resolved["num-cores"] = available_cores()
    if isinstance(resolved.get("host"), dict):
        resolved["host"] = _resolve_auto(resolved["host"])
    return resolved


def _read_family(family: str) -> dict:
    path = TARGETS_DIR / f"{family}.json"
    if not path.is_file():
        raise TargetSpecError(
            f"unknown target '{family}': choose one of {', '.join(families())} "
            f"(each is a file in {TARGETS_DIR})"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise TargetSpecError(f"{path}: not valid JSON ({err}); fix the file") from None
    unknown = set(data) - _FAMILY_KEYS
    if unknown:
        raise TargetSpecError(
            f"{path}: unknown field '{sorted(unknown)[0]}'; allowed: {sorted(_FAMILY_KEYS)}"
        )
    for key in ("schedule_family", "measure", "devices"):
        if key not in data:
            raise TargetSpecError(f"{path}: missing field '{key}'")
    if data["measure"] not in MEASURE_KINDS:
        raise TargetSpecError(f"{path}: field 'measure' must be one of {MEASURE_KINDS}")
    return data


def load_device(family: str, device: str | None = None) -> DeviceSpec:
    """The DeviceSpec of `device` in `targets/<family>.json` (its default device if None)."""
    data = _read_family(family)
    path = TARGETS_DIR / f"{family}.json"
    name = device or data.get("default_device")
    devices = data["devices"]
    if name not in devices:
        raise TargetSpecError(
            f"unknown device '{name}' for target '{family}': choose one of {', '.join(devices)} "
            f"or add it to {path}"
        )
    entry = devices[name]
    unknown = set(entry) - _DEVICE_KEYS
    if unknown:
        raise TargetSpecError(
            f"{path}: device '{name}' has unknown field '{sorted(unknown)[0]}'; allowed: "
            f"{sorted(_DEVICE_KEYS)}"
        )
    if "target" not in entry:
        raise TargetSpecError(f"{path}: device '{name}' has no 'target' field")
    config = _resolve_auto(entry["target"])
    try:
        tvm.target.Target(config)
    except Exception as err:  # TVM raises its own error types for bad target configs
        raise TargetSpecError(f"{path}: device '{name}' has a target TVM rejects: {err}") from None
    return DeviceSpec(
        family=family,
        name=name,
        description=entry.get("description", ""),
        target_config=config,
        schedule_family=data["schedule_family"],
        measure=data["measure"],
        cross_compiler=entry.get("cross_compiler"),
        qemu_cpu=entry.get("qemu_cpu"),
        machine_class=_machine_class(entry["target"], config),
    )


def _machine_class(raw: dict, resolved: dict) -> str | None:
    """The resolved "auto" values as a name (mcpu, cores), or None if the entry has none."""
    parts = []
    if raw.get("mcpu") == "auto":
        parts.append(str(resolved["mcpu"]))
    if raw.get("num-cores") == "auto":
        parts.append(f"{resolved['num-cores']}c")
    return "-".join(parts) or None


def all_devices() -> list[DeviceSpec]:
    """Every device of every family."""
    return [
        load_device(family, name)
        for family in families()
        for name in _read_family(family)["devices"]
    ]
