"""A tuning log directory: MetaSchedule's JSON database plus a record of what it was made for.

Layout of a log directory:
    tvm_mobilenet.json              target, device and model the records belong to
    database_workload.json          MetaSchedule workloads, one JSON line each
    database_tuning_record.json     MetaSchedule tuning records, one JSON line each

MetaSchedule appends (and closes) the files after every measured candidate, so records survive a
crash or Ctrl-C; a line torn by a kill mid-write is set aside here, with a warning, before loading.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import tvm
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TuningLogError
from tvm_mobilenet.resources import shipped_logs_dir
from tvm_mobilenet.schedules import intrin
from tvm_mobilenet.tune.progress import mean_seconds

META_FILE = "tvm_mobilenet.json"
WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"
USER_LOGS_DIR = Path("tuning_logs")  # relative to the working directory: where `tune` writes


def default_log_dir(device, model_log_name: str | None = None) -> Path:
    """Where tune writes a device's records unless --log-dir says otherwise (a model file gets a
    sub-directory of its own)."""
    path = USER_LOGS_DIR / device.family / device.log_name
    return path / model_log_name if model_log_name else path


def shipped_log_dir(device, model_log_name: str | None = None) -> Path:
    """The log shipped with the package for this device class (it may not exist)."""
    path = shipped_logs_dir() / device.family / device.log_name
    return path / model_log_name if model_log_name else path


def log_dir_to_read(device, model_log_name: str | None = None) -> Path:
    """The records compile uses by default: the user's own log, else the one shipped with the
    package (the same directory when run from the repository), else the user's (absent: an untuned
    build)."""
    user = default_log_dir(device, model_log_name)
    shipped = shipped_log_dir(device, model_log_name)
    return shipped if not user.exists() and shipped.exists() else user


def _set_aside_torn_line(path: Path, lines: list[bytes]) -> list[bytes]:
    """Move an unparsable last line to `<file>.torn-<time>` and truncate the file before it."""
    torn = path.with_name(f"{path.name}.torn-{int(time.time())}")
    torn.write_bytes(lines[-1])
    kept = lines[:-1]
    path.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in kept))
    warnings.warn(
        f"{path}: skipped a torn last line (saved in {torn.name}); earlier records are kept",
        stacklevel=2,
    )
    return kept


def _checked_lines(path: Path) -> list[bytes]:
    """The file's lines, after setting aside a torn last line; any other bad line is an error."""
    if not path.exists():
        return []
    lines = [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number == len(lines):
                return _set_aside_torn_line(path, lines)
            raise TuningLogError(
                f"unreadable log: line {number} of {path} is not valid JSON; fix or delete that "
                "line, or pass --log-dir a new directory"
            ) from None
    return lines


def _check_record_indices(log_dir: Path, num_workloads: int, records: list[bytes]) -> None:
    for number, line in enumerate(records, start=1):
        entry = json.loads(line)
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], int)
            and 0 <= entry[0] < num_workloads
        ):
            raise TuningLogError(
                f"unreadable log: line {number} of {log_dir / RECORD_FILE} does not refer to a "
                f"workload in {WORKLOAD_FILE}; pass --log-dir a new directory"
            )


class TuningLog:
    """A checked log directory and its MetaSchedule database."""

    def __init__(self, path: Path, database: ms.database.JSONDatabase):
        self.path = path
        self.database = database

    def records_of(self, mod: tvm.IRModule) -> list[ms.database.TuningRecord]:
        """All records (valid or failed) of the workload `mod`."""
        if not self.database.has_workload(mod):
            return []
        workload = self.database.commit_workload(mod)  # already present: returns it, writes nothing
        return [
            rec for rec in self.database.get_all_tuning_records() if rec.workload.same_as(workload)
        ]

    def best_seconds(self, mod: tvm.IRModule) -> float | None:
        """Mean run time of the best valid record of `mod`, or None."""
        if not self.database.has_workload(mod):
            return None
        top = self.database.get_top_k(self.database.commit_workload(mod), 1)
        return mean_seconds(top[0].run_secs) if top else None


def _check_meta(path: Path, expected: dict) -> None:
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TuningLogError(
            f"unreadable log: {meta_path} ({err}); pass --log-dir a new directory"
        ) from None
    for key in ("device", "target", "model"):
        if meta.get(key) != expected[key]:
            raise TuningLogError(
                f"log directory {path} was made for {key} {json.dumps(meta.get(key))}, not "
                f"{json.dumps(expected[key])}; pass --log-dir a directory for this {key} "
                f"(e.g. {path.parent / 'other'})"
            )


def open_log(
    path: str | Path, device_label: str, target_config: dict, model_key: dict, create: bool
) -> TuningLog:
    """Open (and with `create`, make) the log directory for this device and model.

    Raises TuningLogError if the directory belongs to another target or model, or is unreadable.
    Nothing in an existing directory is removed.
    """
    path = Path(path)
    expected = {"device": device_label, "target": target_config, "model": model_key}
    has_database = (path / WORKLOAD_FILE).exists() or (path / RECORD_FILE).exists()
    if (path / META_FILE).exists():
        _check_meta(path, expected)
    elif has_database:
        raise TuningLogError(
            f"log directory {path} has MetaSchedule records but no {META_FILE}, so it cannot be "
            "told which target and model they are for; pass --log-dir a new directory"
        )
    elif not create:
        raise TuningLogError(
            f"no tuning log in {path}: run `python -m tvm_mobilenet.tune` first, or pass --log-dir"
        )
    else:
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / META_FILE).write_text(
                json.dumps({**expected, "tvm": tvm.__version__}, indent=2) + "\n"
            )
        except OSError as err:
            raise TuningLogError(
                f"cannot create log directory {path} ({err}); pass a writable --log-dir"
            ) from None
    workloads = _checked_lines(path / WORKLOAD_FILE)
    records = _checked_lines(path / RECORD_FILE)
    _check_record_indices(path, len(workloads), records)
    intrin.register()  # int8 records name our tensor intrinsics: decoding needs them registered
    try:
        database = ms.database.JSONDatabase(
            path_workload=str(path / WORKLOAD_FILE),
            path_tuning_record=str(path / RECORD_FILE),
            allow_missing=True,
        )
    except Exception as err:  # TVM's parser raises its own types for records it cannot decode
        raise TuningLogError(
            f"unreadable log in {path}: {str(err).splitlines()[-1]}; pass --log-dir a new directory"
        ) from None
    return TuningLog(path, database)
