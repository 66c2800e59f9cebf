"""Log directories: torn lines are set aside, foreign or broken logs are errors, one writer at a
time, a write that fails is noticed, and nothing committed is ever lost."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tvm_mobilenet.errors import TuningLogError
from tvm_mobilenet.tune.log import META_FILE, RECORD_FILE, WORKLOAD_FILE, open_log


@pytest.fixture
def copy_fixture(tiny_log):
    def copy(tmp_path):
        target = tmp_path / "log"
        target.mkdir()
        for path in tiny_log.iterdir():
            if path.is_file():
                (target / path.name).write_bytes(path.read_bytes())
        return target

    return copy


def open_fixture(path, meta_from=None, **changes):
    meta = {**json.loads(((meta_from or path) / META_FILE).read_text()), **changes}
    return open_log(path, meta["device"], meta["target"], meta["model"], create=False)


def test_fixture_loads(tiny_log):
    log = open_fixture(tiny_log)
    assert len(log.database.get_all_tuning_records()) == 3


def open_fixture_for_writing(path):
    meta = json.loads((path / META_FILE).read_text())
    return open_log(path, meta["device"], meta["target"], meta["model"], create=True)


def test_torn_last_line_is_cut_off_by_the_writer_with_warning(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    (log_dir / RECORD_FILE).write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(UserWarning, match="torn last line"):
        log = open_fixture_for_writing(log_dir)
    assert len(log.database.get_all_tuning_records()) == len(lines)
    assert (log_dir / RECORD_FILE).read_bytes() == b"".join(lines)
    (aside,) = log_dir.glob(f"{RECORD_FILE}.torn-*")  # the fragment is kept aside, not deleted
    assert aside.read_bytes() == lines[-1][: len(lines[-1]) // 2]


def test_a_reader_skips_a_torn_line_and_changes_nothing(tmp_path, copy_fixture):
    """compile may read while a tune appends: it must neither choke on nor cut the last line."""
    log_dir = copy_fixture(tmp_path)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    torn = b"".join(lines) + lines[-1][:100]
    (log_dir / RECORD_FILE).write_bytes(torn)
    log = open_fixture(log_dir)
    assert len(log.database.get_all_tuning_records()) == len(lines)
    assert (log_dir / RECORD_FILE).read_bytes() == torn
    assert not list(log_dir.glob("*.torn-*"))


def test_missing_final_newline_is_restored_before_the_next_append(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    records = (log_dir / RECORD_FILE).read_bytes()
    (log_dir / RECORD_FILE).write_bytes(records.rstrip(b"\n"))
    log = open_fixture_for_writing(log_dir)
    log.database.commit_tuning_record(log.database.get_all_tuning_records()[0])
    log.check_written()
    log.close()
    count = len(records.splitlines())
    assert len(open_fixture(log_dir).database.get_all_tuning_records()) == count + 1


def test_blank_lines_are_removed_without_losing_records(tmp_path, copy_fixture):
    """MetaSchedule's loader crashes (SIGSEGV) on a blank line: the writer removes them."""
    log_dir = copy_fixture(tmp_path)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    (log_dir / RECORD_FILE).write_bytes(b"\n".join(lines) + b"\n")
    assert len(open_fixture(log_dir).database.get_all_tuning_records()) == len(lines)
    log = open_fixture_for_writing(log_dir)
    assert len(log.database.get_all_tuning_records()) == len(lines)
    assert (log_dir / RECORD_FILE).read_bytes() == b"".join(lines)


KILL_DURING_REPAIR = """
import json, os, signal, sys
from pathlib import Path
from tvm_mobilenet.tune import log as tuning_log
log_dir, step = Path(sys.argv[1]), sys.argv[2]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if step == "set-aside":
    tuning_log._write_durably = die
else:
    os.truncate = die
meta = json.loads((log_dir / tuning_log.META_FILE).read_text())
tuning_log.open_log(log_dir, meta["device"], meta["target"], meta["model"], create=True)
"""


@pytest.mark.parametrize("step", ["set-aside", "truncate"])
def test_a_kill_during_the_repair_loses_nothing(tmp_path, copy_fixture, step):
    log_dir = copy_fixture(tmp_path)
    good = (log_dir / RECORD_FILE).read_bytes()
    torn = good.splitlines(keepends=True)[-1][:150]
    (log_dir / RECORD_FILE).write_bytes(good + torn)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_REPAIR, str(log_dir), step],
        check=False,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (log_dir / RECORD_FILE).read_bytes().startswith(good)
    with pytest.warns(UserWarning, match="torn last line"):
        log = open_fixture_for_writing(log_dir)
    assert (log_dir / RECORD_FILE).read_bytes() == good
    assert len(log.database.get_all_tuning_records()) == len(good.splitlines())


def test_one_writer_at_a_time(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    writer = open_fixture_for_writing(log_dir)
    with pytest.raises(TuningLogError, match=rf"in use by pid {os.getpid()} .*--log-dir"):
        open_fixture_for_writing(log_dir)
    assert len(open_fixture(log_dir).database) == 3  # reading goes on meanwhile
    writer.close()
    open_fixture_for_writing(log_dir).close()


def test_a_write_that_does_not_reach_the_disk_stops_the_run(tmp_path, copy_fixture):
    """A full disk: the C++ writer does not notice (ofstream), the check after the commit does."""
    log_dir = copy_fixture(tmp_path)
    good = (log_dir / RECORD_FILE).read_bytes()
    log = open_fixture_for_writing(log_dir)
    (log_dir / RECORD_FILE).rename(tmp_path / "kept")
    (log_dir / RECORD_FILE).symlink_to("/dev/full")  # every write fails with ENOSPC
    log.database.commit_tuning_record(log.database.get_all_tuning_records()[0])
    with pytest.raises(TuningLogError, match=r"could not write to the tuning log.*disk full"):
        log.check_written()
    log.close()
    (log_dir / RECORD_FILE).unlink()
    (tmp_path / "kept").rename(log_dir / RECORD_FILE)
    assert (log_dir / RECORD_FILE).read_bytes() == good
    assert len(open_fixture_for_writing(log_dir).database) == len(good.splitlines())


def test_a_partly_written_line_is_noticed(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    log = open_fixture_for_writing(log_dir)
    with open(log_dir / RECORD_FILE, "ab") as file:  # what ENOSPC in the middle of a line leaves
        file.write((log_dir / RECORD_FILE).read_bytes()[:80])
    log.database.commit_tuning_record(log.database.get_all_tuning_records()[0])
    with pytest.raises(TuningLogError, match="could not write"):
        log.check_written()


def test_bad_line_in_the_middle_is_an_error(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    before = b"".join([lines[0], b"{garbage\n", *lines[1:]])
    (log_dir / RECORD_FILE).write_bytes(before)
    with pytest.raises(TuningLogError, match=r"line 2 .* not valid JSON"):
        open_fixture(log_dir)
    assert (log_dir / RECORD_FILE).read_bytes() == before  # untouched


@pytest.mark.parametrize(
    "field,value",
    [
        ("device", "x86/avx512"),
        ("model", {"name": "mobilenet_v1", "alpha": 0.5, "resolution": 224, "batch": 1}),
    ],
)
def test_log_for_another_target_or_model(tmp_path, copy_fixture, field, value):
    log_dir = copy_fixture(tmp_path)
    before = {p.name: p.read_bytes() for p in log_dir.iterdir()}
    with pytest.raises(TuningLogError, match=f"was made for {field}"):
        open_fixture(log_dir, **{field: value})
    assert {p.name: p.read_bytes() for p in log_dir.iterdir()} == before


def test_records_without_meta_are_refused(tmp_path, copy_fixture, tiny_log):
    log_dir = copy_fixture(tmp_path)
    (log_dir / META_FILE).unlink()
    with pytest.raises(TuningLogError, match=r"no tvm_mobilenet\.json"):
        open_fixture(log_dir, meta_from=tiny_log)


def test_missing_log_for_compile(tmp_path, tiny_log):
    with pytest.raises(TuningLogError, match="no tuning log"):
        open_fixture(tmp_path / "nothing", meta_from=tiny_log)


def test_new_log_is_created(tmp_path, tiny_log):
    meta = json.loads((tiny_log / META_FILE).read_text())
    log = open_log(tmp_path / "new", meta["device"], meta["target"], meta["model"], create=True)
    assert (tmp_path / "new" / META_FILE).exists() and len(log.database) == 0
    assert (
        not (tmp_path / "new" / WORKLOAD_FILE).exists()
        or (tmp_path / "new" / WORKLOAD_FILE).read_text() == ""
    )
