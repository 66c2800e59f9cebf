"""A tuning log directory: MetaSchedule's JSON database plus a record of what it was made for.

Layout of a log directory:
    tvm_mobilenet.json              target, device and model the records belong to
    database_workload.json          MetaSchedule workloads, one JSON line each
    database_tuning_record.json     MetaSchedule tuning records, one JSON line each
    tvm_mobilenet.lock              held by the one `tune` writing here (names it)

One writer per directory: `tune` opens it for writing under an exclusive lock, and only the
writer repairs a file (a line torn by a kill is moved aside and the file truncated after its last
good line; a missing final newline is added). MetaSchedule appends and closes the files after
every measured candidate, so a crash or Ctrl-C loses nothing; after each batch the writer checks
that every committed line reached the file (a full disk is an error, not a silent loss). Readers
(`compile`, `verify`, ...) never change the files: they load a consistent snapshot, even while a
tune writes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import tvm
import tvm_ffi
from tvm.s_tir import meta_schedule as ms

from tvm_mobilenet.errors import TuningLogError
from tvm_mobilenet.resources import shipped_logs_dir
from tvm_mobilenet.schedules import intrin
from tvm_mobilenet.tune.progress import mean_seconds

META_FILE = "tvm_mobilenet.json"
WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"
LOCK_FILE = "tvm_mobilenet.lock"
USER_LOGS_DIR = Path("tuning_logs")  # relative to the working directory: where `tune` writes


def default_log_dir(device, model) -> Path:
    """Where tune writes a device's records for `model` unless --log-dir says otherwise: one
    sub-directory per model (`mobilenet_v1-1.0-224-b1`, `<file stem>-<sha256 prefix>`), so every
    model gets its own log on every device. A log of the older layout (the records directly in the
    device's directory) is used while it belongs to this model."""
    device_dir = USER_LOGS_DIR / device.family / device.log_name
    if _belongs_to(device_dir, model.key):
        return device_dir
    return device_dir / model.log_name


def shipped_log_dir(device, model) -> Path:
    """The log shipped with the package for this device class and model (it may not exist)."""
    return shipped_logs_dir() / device.family / device.log_name / model.log_name


def log_dir_to_read(device, model) -> Path:
    """The records compile uses by default: the user's own log, else the one shipped with the
    package (the same directory when run from the repository), else the user's (absent: an untuned
    build). Only logs of this device class: another device's records are never built unmeasured."""
    user = default_log_dir(device, model)
    shipped = shipped_log_dir(device, model)
    return shipped if not user.exists() and shipped.exists() else user


def read_meta(path: Path) -> dict | None:
    """The parsed tvm_mobilenet.json of a log directory, or None if it has none (or it is
    unreadable)."""
    try:
        meta = json.loads((Path(path) / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def _belongs_to(path: Path, model_key: dict) -> bool:
    meta = read_meta(path)
    return meta is not None and meta.get("model") == model_key


# ---------------------------------------------------------------- reading lines


class _Lines:
    """A JSON-lines file as read: its good lines, where they end, and what follows them."""

    def __init__(self, path: Path, data: bytes):
        self.path = path
        self.good: list[bytes] = []  # complete JSON lines, without their newline
        self.good_end = 0  # byte offset just past the last good line's newline (or its end)
        self.blank_lines = False  # a blank line (MetaSchedule's loader crashes on one)
        self.missing_newline = False  # the last good line has no newline after it
        self.torn = b""  # an unparsable last line (torn by a kill or a full disk)
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        lines = data.split(b"\n")
        offset = 0
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines)  # text after the final newline ("" if none)
            end = offset + len(line) + (0 if is_last else 1)
            if not line.strip():
                self.blank_lines |= not is_last
            elif _parses(line):
                self.good.append(line)
                self.good_end, self.missing_newline = end, is_last
            elif is_last or not any(rest.strip() for rest in lines[number:]):
                self.torn = data[offset:]
                return
            else:
                raise TuningLogError(
                    f"unreadable log: line {number} of {self.path} is not valid JSON; fix or "
                    "delete that line, or pass --log-dir a new directory"
                )
            offset = end

    def text(self) -> bytes:
        return b"".join(line + b"\n" for line in self.good)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _read_lines(path: Path) -> _Lines:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as err:
        raise TuningLogError(f"unreadable log: {path} ({err.strerror})") from None
    return _Lines(path, data)


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


# ---------------------------------------------------------------- repairs (the writer only)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair(lines: _Lines) -> None:
    """Make the file hold exactly its good lines, each ending in a newline, losing none of them.

    A torn tail is copied aside first, then cut off by truncation (one system call: a kill at any
    moment leaves either the old file or the repaired one). Blank lines, which only a hand edit
    makes, are removed by writing a temporary file and renaming it over the original."""
    path = lines.path
    if lines.torn:
        aside = path.with_name(f"{path.name}.torn-{time.time_ns()}")
        _write_durably(aside, lines.torn)
        os.truncate(path, lines.good_end)
        warnings.warn(
            f"{path}: skipped a torn last line (saved in {aside.name}); earlier records are kept",
            stacklevel=3,
        )
    if lines.blank_lines:
        staging = path.with_name(f".{path.name}.repair")
        _write_durably(staging, lines.text())
        os.replace(staging, path)
    elif lines.missing_newline:
        with open(path, "ab") as file:
            file.write(b"\n")
    _fsync(path)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _needs_repair(lines: _Lines) -> bool:
    return bool(lines.torn) or lines.blank_lines or lines.missing_newline


# ---------------------------------------------------------------- the lock


def _lock(path: Path):
    """An open file holding the exclusive lock of the log directory; TuningLogError if a tune
    holds it. The lock goes with the process (a killed tune leaves no stale lock)."""
    lock = open(path / LOCK_FILE, "a+")  # noqa: SIM115 (held for the log's lifetime)
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise TuningLogError(
            f"log directory {path} is in use by {holder}; wait for it to finish, or pass "
            "--log-dir another directory"
        ) from None
    lock.seek(0)
    lock.truncate()
    command = shlex.join([Path(sys.orig_argv[0]).name, *sys.orig_argv[1:]])[:200]
    lock.write(f"pid {os.getpid()} (`{command}`, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    lock.flush()
    return lock


# ---------------------------------------------------------------- the log


class _AppendCheck:
    """Follows one file the writer appends to: the complete lines it has shown so far."""

    def __init__(self, path: Path, lines: int):
        self.path = path
        self.lines = lines
        self.offset = path.stat().st_size if path.exists() else 0

    def check(self, expected_lines: int) -> None:
        """Raise TuningLogError unless the file holds `expected_lines` complete lines (the new
        ones are read from where the last check stopped); then flush them to the disk."""
        if expected_lines <= self.lines:
            return
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                new = file.read(size - self.offset) if size >= self.offset else b""
                os.fsync(file.fileno())
        except OSError:
            new = b""
        complete = new[: new.rfind(b"\n") + 1]
        if all(_parses(line) for line in complete.splitlines()):
            self.lines += complete.count(b"\n")
            self.offset += len(complete)
        if self.lines < expected_lines or len(complete) < len(new):
            free = shutil.disk_usage(self.path.parent).free
            raise TuningLogError(
                f"could not write to the tuning log: {self.path} lacks "
                f"{max(expected_lines - self.lines, 1)} of the lines just committed (disk full? "
                f"{free / 1e6:.0f} MB free); every record before them is kept: free some space "
                "and run the same command to resume"
            )


class TuningLog:
    """A checked log directory and its MetaSchedule database.

    Opened for writing (by `open_log(create=True)`), it holds the directory's lock until closed
    or garbage-collected, and `check_written` verifies what MetaSchedule appended. Opened for
    reading, the database is a snapshot and must not be committed to."""

    def __init__(self, path: Path, database: ms.database.JSONDatabase, release=None):
        self.path = path
        self.database = database
        self._release = release  # closes the lock file (writer) or the snapshot (reader)
        self._checks: dict[str, _AppendCheck] = {}
        self._workloads = 0

    @property
    def writable(self) -> bool:
        return bool(self._checks)

    def close(self) -> None:
        """Release the lock (a writer) or the snapshot (a reader)."""
        if self._release is not None:
            self._release()
            self._release = None

    def _follow(self, workloads: int, records: int) -> None:
        self._workloads = workloads
        self._checks = {
            WORKLOAD_FILE: _AppendCheck(self.path / WORKLOAD_FILE, workloads),
            RECORD_FILE: _AppendCheck(self.path / RECORD_FILE, records),
        }

    def commit_workload(self, mod: tvm.IRModule) -> ms.database.Workload:
        """The workload of `mod`, written to the log first if new (and checked: records must never
        refer to a workload the file lacks)."""
        new = not self.database.has_workload(mod)
        workload = self.database.commit_workload(mod)
        if new:
            self._workloads += 1
            self.check_written()
        return workload

    def check_written(self) -> None:
        """After commits: every committed line must be in the files (TuningLogError if not)."""
        if self.writable:
            self._checks[WORKLOAD_FILE].check(self._workloads)
            self._checks[RECORD_FILE].check(len(self.database))

    def records_of(self, mod: tvm.IRModule) -> list[ms.database.TuningRecord]:
        """All records (valid or failed) of the workload `mod`."""
        if not self.database.has_workload(mod):
            return []
        workload = self.database.commit_workload(mod)  # already present: returns it, writes nothing
        return [
            rec for rec in self.database.get_all_tuning_records() if rec.workload.same_as(workload)
        ]

    def valid_records_of(self, mod: tvm.IRModule) -> list[ms.database.TuningRecord]:
        """The records of `mod` that measured a time (failed candidates are kept for diagnosis but
        are not trials)."""
        return [rec for rec in self.records_of(mod) if mean_seconds(rec.run_secs) is not None]

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


def _create(path: Path, expected: dict) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        _write_durably(
            path / META_FILE,
            (json.dumps({**expected, "tvm": tvm.__version__}, indent=2) + "\n").encode(),
        )
    except OSError as err:
        raise TuningLogError(
            f"cannot create log directory {path} ({err}); pass a writable --log-dir"
        ) from None


def _load_database(path: Path, directory: Path) -> ms.database.JSONDatabase:
    intrin.register()  # int8 records name our tensor intrinsics: decoding needs them registered
    try:
        return ms.database.JSONDatabase(
            path_workload=str(directory / WORKLOAD_FILE),
            path_tuning_record=str(directory / RECORD_FILE),
            allow_missing=True,
        )
    except Exception as err:  # TVM's parser raises its own types for records it cannot decode
        raise TuningLogError(
            f"unreadable log in {path}: {str(err).splitlines()[-1]}; pass --log-dir a new directory"
        ) from None


def _open_for_writing(path: Path) -> TuningLog:
    lock = _lock(path)
    try:
        workloads, records = _read_lines(path / WORKLOAD_FILE), _read_lines(path / RECORD_FILE)
        _check_record_indices(path, len(workloads.good), records.good)
        for lines in (workloads, records):
            if _needs_repair(lines):
                _repair(lines)
        log = TuningLog(path, _load_database(path, path), release=lock.close)
    except BaseException:
        lock.close()
        raise
    log._follow(len(workloads.good), len(records.good))
    return log


def open_snapshot(path: Path) -> TuningLog:
    """Records first, then workloads: a writer appends a workload before any record refers to it,
    so what is read is consistent; a torn or unfinished last line is left out, never repaired."""
    records = _read_lines(path / RECORD_FILE)
    workloads = _read_lines(path / WORKLOAD_FILE)
    _check_record_indices(path, len(workloads.good), records.good)
    snapshot = tempfile.TemporaryDirectory(prefix="tvm_mobilenet_log_")
    directory = Path(snapshot.name)
    (directory / WORKLOAD_FILE).write_bytes(workloads.text())
    (directory / RECORD_FILE).write_bytes(records.text())
    return TuningLog(path, _load_database(path, directory), release=snapshot.cleanup)


def workload_hashes(path: Path) -> set[str]:
    """The structural hashes of the workloads in the log at `path`, read without decoding them
    (MetaSchedule matches a module to a workload by this hash, then by structural equality)."""
    return {json.loads(line)[0] for line in _read_lines(path / WORKLOAD_FILE).good}


def may_hold(path: Path, mods: list[tvm.IRModule]) -> bool:
    """False if the log at `path` surely holds none of `mods`: cheap, where decoding a log of a
    few thousand records takes seconds."""
    hashes = workload_hashes(path)
    return any(str(tvm_ffi.structural_hash(mod)) in hashes for mod in mods)


def open_log(
    path: str | Path, device_label: str, target_config: dict, model_key: dict, create: bool
) -> TuningLog:
    """Open the log directory for this device and model: with `create`, for writing (made if new,
    locked, repaired), else a read-only snapshot.

    Raises TuningLogError if the directory belongs to another target or model, is unreadable, or
    (for writing) is in use by another tune. Nothing measured is ever removed.
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
        _create(path, expected)
    return _open_for_writing(path) if create else open_snapshot(path)
