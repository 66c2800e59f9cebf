"""Targets as data: every device in targets/ builds a TVM target; bad names are clear errors."""

import pytest
import tvm

from tvm_mobilenet.devices import all_devices, load_device
from tvm_mobilenet.errors import TargetSpecError
from tvm_mobilenet.model.architecture import ModelConfig
from tvm_mobilenet.model.source import BuiltinMobileNet
from tvm_mobilenet.tune.log import default_log_dir


def test_every_device_builds_a_target():
    devices = all_devices()
    assert {d.family for d in devices} == {"x86", "arm", "mali"}
    for device in devices:
        target = device.target
        assert isinstance(target, tvm.target.Target)
        assert device.schedule_family in ("x86", "arm_cpu", "mali")


def test_host_is_detected():
    host = load_device("x86")
    assert host.name == "host"
    assert host.target_config["mcpu"] == str(tvm.target.codegen.llvm_get_system_cpu())
    assert isinstance(host.target_config["num-cores"], int) and host.target_config["num-cores"] >= 1


def test_default_log_dir_names_the_machine_class_only_for_detected_devices():
    host = load_device("x86")
    config = host.target_config
    model = BuiltinMobileNet(ModelConfig())
    assert (
        str(default_log_dir(host, model))
        == f"tuning_logs/x86/host-{config['mcpu']}-{config['num-cores']}c/mobilenet_v1-1.0-224-b1"
    )
    assert (
        str(default_log_dir(load_device("arm", "rasp4b"), model))
        == "tuning_logs/arm/rasp4b/mobilenet_v1-1.0-224-b1"
    )


def test_arm_keys_put_arm_cpu_first():
    assert load_device("arm", "rasp4b").target.keys[0] == "arm_cpu"
    assert "mali" in load_device("mali", "rk3399-mali").target.keys


@pytest.mark.parametrize(
    "family,device,fragment",
    [("riscv", None, "unknown target 'riscv'"), ("x86", "pentium", "unknown device 'pentium'")],
)
def test_unknown_names(family, device, fragment):
    with pytest.raises(TargetSpecError, match=fragment):
        load_device(family, device)
