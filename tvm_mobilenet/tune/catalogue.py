"""The catalogue of tuning logs: those shipped with the package and those tuned here, each with the
device and model it was made for (read from its tvm_mobilenet.json), its record counts and date."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.resources import shipped_logs_dir
from tvm_mobilenet.tune.log import META_FILE, RECORD_FILE, USER_LOGS_DIR, read_meta
from tvm_mobilenet.tune.progress import mean_seconds


@dataclass(frozen=True)
class LogEntry:
    """One log directory as the catalogue lists it."""

    path: Path
    origin: str  # "shipped" (with the package) or "local" (tuned here, under ./tuning_logs)
    device: str  # the device label it was tuned for, e.g. "x86/host"
    target: dict  # the resolved TVM target config (mcpu, cores, ...)
    model: dict  # the model key
    records: int  # every record, failed candidates included
    valid_records: int  # records that measured a time
    date: str  # last change of the records, YYYY-MM-DD

    @property
    def family(self) -> str:
        return self.device.split("/")[0]

    @property
    def device_class(self) -> str:
        """The device and what its records depend on, e.g. "x86/host rocketlake 2c"."""
        details = [str(self.target[k]) for k in ("mcpu",) if k in self.target]
        if "num-cores" in self.target:
            details.append(f"{self.target['num-cores']}c")
        return " ".join([self.device, *details])

    @property
    def model_name(self) -> str:
        return model_name(self.model)


def model_name(key: dict) -> str:
    """A model key in a few characters: "mobilenet_v1 1.0/224 b1", or the model file's name."""
    int8 = f" int8-{key['int8_arithmetic']}" if key.get("int8_arithmetic") else ""
    if key.get("int8_multiply"):
        int8 += f"-{key['int8_multiply']}"
    if key.get("name") == "mobilenet_v1":
        return f"mobilenet_v1 {key['alpha']}/{key['resolution']} b{key['batch']}{int8}"
    return str(key.get("file", key)) + int8


def count_records(log_dir: Path) -> tuple[int, int]:
    """(all records, valid records) of a log directory, from its record file as it stands."""
    try:
        lines = (Path(log_dir) / RECORD_FILE).read_bytes().splitlines()
    except OSError:
        return 0, 0
    total = valid = 0
    for line in lines:
        try:
            run_secs = json.loads(line)[1][1]
        except (ValueError, IndexError, TypeError):
            continue  # a torn last line: the writer repairs it, the catalogue skips it
        total += 1
        valid += mean_seconds(run_secs) is not None
    return total, valid


def read_entry(log_dir: Path, origin: str) -> LogEntry | None:
    """The catalogue entry of a log directory, or None if it has no readable tvm_mobilenet.json."""
    meta = read_meta(log_dir)
    if meta is None or not {"device", "target", "model"} <= set(meta):
        return None
    records, valid = count_records(log_dir)
    changed = max(
        (p.stat().st_mtime for p in (log_dir / RECORD_FILE, log_dir / META_FILE) if p.exists()),
        default=0.0,
    )
    return LogEntry(
        path=log_dir,
        origin=origin,
        device=str(meta["device"]),
        target=dict(meta["target"]),
        model=dict(meta["model"]),
        records=records,
        valid_records=valid,
        date=time.strftime("%Y-%m-%d", time.gmtime(changed)),
    )


def find_logs(roots: dict[str, Path] | None = None) -> list[LogEntry]:
    """Every log under the shipped logs and ./tuning_logs (or `roots`, origin -> directory),
    each once (run from the repository, both are the same folder: it counts as shipped)."""
    if roots is None:
        roots = {"shipped": shipped_logs_dir(), "local": USER_LOGS_DIR}
    seen: set[Path] = set()
    entries = []
    for origin, root in roots.items():
        for meta_path in sorted(Path(root).glob(f"**/{META_FILE}")):
            log_dir = meta_path.parent
            if log_dir.resolve() in seen:
                continue
            seen.add(log_dir.resolve())
            entry = read_entry(log_dir, origin)
            if entry is not None:
                entries.append(entry)
    return entries
