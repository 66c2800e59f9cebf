"""Logs keyed by device and model, and the catalogue that lists them."""

from __future__ import annotations

import json
import shutil

from tests.conftest import LOG_DEVICE, TINY_MODEL, run_cli
from tvm_mobilenet.devices import load_device
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet
from tvm_mobilenet.tune.catalogue import count_records, find_logs
from tvm_mobilenet.tune.log import META_FILE, RECORD_FILE, default_log_dir, log_dir_to_read


def _model(alpha=1.0, resolution=224):
    return BuiltinMobileNet(ModelConfig(alpha=alpha, resolution=resolution))


def test_each_model_has_its_own_default_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    device = load_device(*LOG_DEVICE)
    big, small = default_log_dir(device, _model()), default_log_dir(device, _model(0.25, 64))
    assert str(big) == f"tuning_logs/x86/{device.log_name}/mobilenet_v1-1.0-224-b1"
    assert str(small) == f"tuning_logs/x86/{device.log_name}/mobilenet_v1-0.25-64-b1"
    # nothing tuned for 0.25/64: compile reads a directory that does not exist (an untuned build)
    assert not log_dir_to_read(device, _model(0.25, 64)).exists()


def test_a_log_of_the_older_layout_is_still_read_for_its_own_model(tmp_path, monkeypatch, tiny_log):
    monkeypatch.chdir(tmp_path)
    device = load_device(*LOG_DEVICE)
    legacy = tmp_path / "tuning_logs" / "x86" / device.log_name  # records in the device folder
    shutil.copytree(tiny_log, legacy)
    tiny = BuiltinMobileNet(ModelConfig(**TINY_MODEL))
    assert default_log_dir(device, tiny).resolve() == legacy
    assert log_dir_to_read(device, tiny).resolve() == legacy
    # another model of the same device does not collide with it
    other = default_log_dir(device, _model(0.25, 64))
    assert other.resolve() == legacy / "mobilenet_v1-0.25-64-b1"


def test_the_catalogue_lists_shipped_and_local_logs(tmp_path, tiny_log):
    local = tmp_path / "local" / "x86" / "avx2-2c" / "mobilenet_v1-0.25-32-b1"
    shutil.copytree(tiny_log, local)
    with open(local / RECORD_FILE, "ab") as file:  # one failed candidate
        line = json.loads((local / RECORD_FILE).read_bytes().splitlines()[0])
        line[1][1] = [1e10]
        file.write(json.dumps(line).encode() + b"\n")
    entries = find_logs({"shipped": tmp_path / "none", "local": tmp_path / "local"})
    assert len(entries) == 1
    entry = entries[0]
    total, valid = count_records(tiny_log)
    assert (entry.records, entry.valid_records) == (total + 1, valid)
    assert valid == 3
    assert (entry.origin, entry.family, entry.device) == ("local", "x86", "x86/avx2")
    assert entry.model_name == "mobilenet_v1 0.25/32 b1"
    assert entry.device_class.startswith("x86/avx2 haswell ")
    assert json.loads((local / META_FILE).read_text())["model"] == entry.model


def test_logs_command_lists_the_shipped_log_from_any_directory(tmp_path):
    result = run_cli("logs", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shipped = [e for e in json.loads(result.stdout) if e["origin"] == "shipped"]
    rocketlake = [e for e in shipped if e["target_config"].get("mcpu") == "rocketlake"]
    assert rocketlake and rocketlake[0]["model"]["resolution"] == 224
    assert rocketlake[0]["records"] == rocketlake[0]["valid_records"] == 441
    table = run_cli("tune", "--list-logs", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "mobilenet_v1 1.0/224 b1" in table.stdout and "rocketlake" in table.stdout
