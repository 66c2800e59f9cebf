"""Log directories: torn lines are set aside, foreign or broken logs are errors, nothing is lost."""

import json

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


def test_torn_last_line_is_skipped_with_warning(tmp_path, copy_fixture):
    log_dir = copy_fixture(tmp_path)
    lines = (log_dir / RECORD_FILE).read_bytes().splitlines(keepends=True)
    (log_dir / RECORD_FILE).write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(UserWarning, match="torn last line"):
        log = open_fixture(log_dir)
    assert len(log.database.get_all_tuning_records()) == len(lines)
    assert list(log_dir.glob(f"{RECORD_FILE}.torn-*"))  # the fragment is kept aside, not deleted


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
