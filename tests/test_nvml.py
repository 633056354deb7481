"""The NVML probe: every NVML error becomes an actionable DeviceDetectionError, NVML is
always shut down, old bindings work, and probing imports neither torch nor (until
needed) pynvml."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from detargs import nvml as nvml_module
from detargs import testing
from detargs.device import Arch, ComputeCapability, DeviceInfo, GpuInfo, MigInfo
from detargs.errors import DeviceDetectionError
from detargs.nvml import error_message, probe
from detargs.testing import NVML_ERROR_CODES, FakeNvml, NVMLError, fake_gpu

FIXTURE = Path(__file__).parent / "fixtures" / "nvml" / "h200-real.json"
SRC = Path(nvml_module.__file__).resolve().parents[1]
ALL_CODES = [pytest.param(code, id=name.lower()) for name, code in NVML_ERROR_CODES.items()]

# What a user must read for the codes they are most likely to meet.
ACTIONABLE = [
    pytest.param(9, "no NVIDIA driver found", id="driver-not-loaded"),
    pytest.param(12, "no NVIDIA driver found", id="library-not-found"),
    pytest.param(12, "libnvidia-ml.so.1", id="library-not-found-names-lib"),
    pytest.param(4, "/dev/nvidia*", id="no-permission"),
    pytest.param(15, "needs a reset or the node a reboot", id="gpu-lost"),
    pytest.param(16, "nvidia-smi --gpu-reset", id="reset-required"),
    pytest.param(18, "reboot the node", id="lib-rm-mismatch"),
    pytest.param(13, "upgrade the driver", id="function-not-found"),
    pytest.param(25, "nvidia-ml-py release that matches the driver", id="arg-version-mismatch"),
    pytest.param(27, "retry in a few seconds", id="not-ready"),
    pytest.param(14, "infoROM", id="corrupted-inforom"),
    pytest.param(999, "dmesg", id="unknown"),
]


def test_the_h200_dump_gives_the_right_device_info() -> None:
    fake = FakeNvml.from_dump(FIXTURE)
    info = probe(environ={}, nvml=fake)
    assert info == DeviceInfo(
        gpus=(
            GpuInfo(
                index=0,
                nvml_index=0,
                name="NVIDIA H200",
                uuid="GPU-0ce58777-4a0d-e057-b354-2b640cdd9445",
                capability=ComputeCapability(9, 0),
                arch=Arch.HOPPER,
                memory_total_bytes=150754820096,
                mig=MigInfo(enabled=False),
                pci_bus_id="00000000:00:06.0",
            ),
        ),
        driver_version="580.159.04",
        cuda_driver_version="13.0",
        source="nvml",
    )
    assert (fake.init_calls, fake.shutdown_calls, fake.initialized) == (1, 1, False)


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_error_on_init_is_a_detection_error(code: int) -> None:
    fake = FakeNvml.from_dump(FIXTURE, fail_on_init=code)
    with pytest.raises(DeviceDetectionError) as raised:
        probe(environ={}, nvml=fake)
    message = str(raised.value)
    _assert_actionable(message, code, "nvmlInit")
    assert isinstance(raised.value.__cause__, NVMLError)
    # nvmlInit failed, so there is nothing to shut down, and nothing was left open.
    assert (fake.init_calls, fake.shutdown_calls, fake.initialized) == (1, 0, False)


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_error_mid_query_is_a_detection_error_and_nvml_is_shut_down(code: int) -> None:
    fake = FakeNvml.from_profile("h100", count=2)
    fake.fail("nvmlDeviceGetUUID", code=code, index=1)
    with pytest.raises(DeviceDetectionError) as raised:
        probe(environ={}, nvml=fake)
    _assert_actionable(str(raised.value), code, "nvmlDeviceGetUUID on GPU 1")
    assert (fake.init_calls, fake.shutdown_calls, fake.initialized) == (1, 1, False)


@pytest.mark.parametrize(
    "function",
    [
        "nvmlSystemGetDriverVersion",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetCudaComputeCapability",
        "nvmlDeviceGetName",
    ],
)
def test_a_failure_in_any_query_shuts_nvml_down(function: str) -> None:
    fake = FakeNvml.from_profile("b200")
    fake.fail(function, code=15)
    with pytest.raises(DeviceDetectionError, match="a GPU is lost"):
        probe(environ={}, nvml=fake)
    assert (fake.init_calls, fake.shutdown_calls, fake.initialized) == (1, 1, False)


@pytest.mark.parametrize(("code", "phrase"), ACTIONABLE)
def test_messages_say_what_to_do(code: int, phrase: str) -> None:
    fake = FakeNvml(fail_on_init=code)
    with pytest.raises(DeviceDetectionError) as raised:
        probe(environ={}, nvml=fake)
    assert phrase in str(raised.value)


def test_every_code_has_its_own_explanation() -> None:
    headlines = {error_message(code, "x", "f").split(" (NVML")[0] for code in _codes()}
    # LIBRARY_NOT_FOUND and DRIVER_NOT_LOADED deliberately share "no NVIDIA driver found".
    assert len(headlines) == len(NVML_ERROR_CODES) - 1


def test_an_unknown_code_still_reads_as_a_sentence() -> None:
    message = error_message(4242, "NVML Error with code 4242", "nvmlInit")
    assert "NVML error 4242" in message
    assert "device='h100'" in message


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(OSError("libnvidia-ml.so.1: cannot open shared object"), id="oserror"),
        pytest.param(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), id="undecodable-name"),
    ],
)
def test_a_broken_binding_is_a_detection_error(error: BaseException) -> None:
    fake = FakeNvml.from_profile("h100")
    fake.fail("nvmlDeviceGetName", exception=error)
    with pytest.raises(DeviceDetectionError, match="NVML binding broke in nvmlDeviceGetName"):
        probe(environ={}, nvml=fake)
    assert fake.shutdown_calls == 1


def test_an_os_error_on_init_is_a_detection_error() -> None:
    fake = FakeNvml.from_profile("h100")
    fake.fail("nvmlInit", exception=OSError("cannot load"))
    with pytest.raises(DeviceDetectionError, match="nvmlInit"):
        probe(environ={}, nvml=fake)
    assert (fake.shutdown_calls, fake.initialized) == (0, False)


def test_a_failing_shutdown_does_not_hide_the_result() -> None:
    fake = FakeNvml.from_profile("h100")
    fake.fail("nvmlShutdown", code=1)
    assert probe(environ={}, nvml=fake).count == 1


def test_bytes_returning_bindings_give_the_same_device_info() -> None:
    as_str = probe(environ={}, nvml=FakeNvml.from_dump(FIXTURE))
    as_bytes = probe(environ={}, nvml=FakeNvml.from_dump(FIXTURE, return_bytes=True))
    assert as_bytes == as_str
    assert isinstance(FakeNvml.from_dump(FIXTURE, return_bytes=True).gpus[0].name, str)


def test_memory_not_supported_is_none() -> None:
    info = probe(environ={}, nvml=FakeNvml.from_profile("dgx-spark"))
    gpu = info.launch_gpu()
    assert gpu.memory_total_bytes is None
    assert (gpu.name, gpu.capability.sm, gpu.arch) == ("NVIDIA GB10", "sm121", Arch.BLACKWELL)
    assert "?" in info.describe()


def test_other_memory_errors_are_not_swallowed() -> None:
    fake = FakeNvml.from_profile("h100")
    fake.fail("nvmlDeviceGetMemoryInfo", code=15)
    with pytest.raises(DeviceDetectionError, match="nvmlDeviceGetMemoryInfo on GPU 0"):
        probe(environ={}, nvml=fake)


def test_mig_not_supported_is_none_and_disabled_is_recorded() -> None:
    fake = FakeNvml(gpus=[fake_gpu("v100", 0), fake_gpu("a100", 1)])
    info = probe(environ={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=fake)
    assert [gpu.mig for gpu in info.gpus] == [None, MigInfo(enabled=False)]


def test_empty_mig_slots_are_skipped_and_the_c_uint_is_read_as_bool() -> None:
    instance = testing.FakeMigDevice("MIG-1", "NVIDIA H100 MIG 1g.10gb", 10 * 2**30, 9, 0)
    fake = FakeNvml(gpus=[fake_gpu("h100", 0, mig_mode=(1, 1), mig_devices=(instance,))])
    (gpu,) = probe(environ={}, nvml=fake).gpus
    assert gpu.uuid == "MIG-1"
    assert fake.calls.count("nvmlDeviceGetMigDeviceHandleByIndex") == 7  # 6 empty slots


def test_recorded_failures_replay() -> None:
    dump = json.loads(FIXTURE.read_text(encoding="utf-8"))
    dump["devices"][0]["memory_total"] = {"nvml_error": 3, "name": "NVMLError_NotSupported"}
    assert probe(environ={}, nvml=FakeNvml.from_dump(dump)).gpus[0].memory_total_bytes is None


def test_environ_is_read_not_written() -> None:
    before = dict(os.environ)
    frozen = MappingProxyType({"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert probe(environ=frozen, nvml=FakeNvml.from_profile("h100", count=2)).count == 1
    assert dict(os.environ) == before


def test_assumptions_are_data_on_the_device_not_python_warnings() -> None:
    fake = FakeNvml(gpus=[fake_gpu("l4", 0), fake_gpu("b200", 1)])
    info = probe(environ={}, nvml=fake)  # pytest runs with filterwarnings = error
    assert any("CUDA_DEVICE_ORDER" in text for text in info.warnings)


def test_fake_errors_behave_like_pynvml() -> None:
    error = NVMLError(15)
    assert type(error).__name__ == "NVMLError_GpuIsLost"
    assert (error.value, str(error)) == (15, "GPU is lost")
    assert error == FakeNvml().NVMLError_GpuIsLost()
    assert isinstance(FakeNvml().NVMLError_LibraryNotFound(), NVMLError)
    assert FakeNvml().NVML_ERROR_GPU_NOT_FOUND == 28
    assert str(NVMLError(28)) == "Gpu Not Found"


def test_fake_error_names_match_the_installed_binding() -> None:
    pynvml = pytest.importorskip("pynvml")
    real = {name for name in dir(pynvml) if name.startswith("NVMLError_")}
    fake = {type(NVMLError(code)).__name__ for code in NVML_ERROR_CODES.values()}
    assert len(fake) == 31
    assert fake <= real
    for name, code in NVML_ERROR_CODES.items():
        assert getattr(pynvml, name) == code
        assert type(NVMLError(code)).__name__ == type(pynvml.NVMLError(code)).__name__
    for code in _FIXED:
        assert str(NVMLError(code)) == str(pynvml.NVMLError(code))


def test_fake_rejects_calls_before_init_like_nvml() -> None:
    with pytest.raises(NVMLError) as raised:
        FakeNvml.from_profile("h100").nvmlDeviceGetCount()
    assert raised.value.value == 1


def test_fail_names_a_real_function() -> None:
    with pytest.raises(ValueError, match="no NVML function"):
        FakeNvml().fail("nvmlDeviceGetNmae", code=3)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_probing_imports_neither_torch_nor_pynvml_with_a_fake() -> None:
    result = _run(
        """
        import sys
        from detargs.detection import detect
        from detargs.testing import FakeNvml
        info = detect(environ={}, nvml=FakeNvml.from_profile("h200"))
        assert info.count == 1
        assert "torch" not in sys.modules
        assert "pynvml" not in sys.modules
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_the_real_binding_never_brings_torch_or_a_traceback() -> None:
    # Simulates the deprecated `pynvml` package's import hook, which warns with
    # FutureWarning; under -W error that must not escape from probe().
    result = _run(
        """
        import importlib.abc, sys, warnings
        class Warns(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "pynvml":
                    warnings.warn("The pynvml package is deprecated.", FutureWarning)
                return None
        sys.meta_path.insert(0, Warns())
        from detargs.errors import DeviceDetectionError
        from detargs.nvml import probe
        try:
            info = probe(environ={})
        except DeviceDetectionError as error:
            print("error:", error)
        else:
            print("probed:", info.count)
        assert "torch" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("error: GPU detection failed", "probed:")), result.stdout


def test_a_missing_binding_is_a_detection_error() -> None:
    result = _run(
        """
        import sys
        sys.modules["pynvml"] = None  # makes `import pynvml` raise ImportError
        from detargs.errors import DeviceDetectionError
        from detargs.nvml import probe
        try:
            probe(environ={})
        except DeviceDetectionError as error:
            print(error)
        """
    )
    assert "pip install nvidia-ml-py" in result.stdout, result.stderr


def test_pure_modules_do_not_import_pynvml() -> None:
    result = _run(
        """
        import sys
        import detargs.device, detargs.profiles, detargs._visible, detargs.testing
        import detargs.detection, detargs.nvml
        assert "pynvml" not in sys.modules and "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("module", [nvml_module, testing], ids=["nvml", "testing"])
def test_module_doctests(module: object) -> None:
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0  # type: ignore[arg-type]


# pynvml's fixed message table; other codes go through nvmlErrorString, which needs NVML.
_FIXED = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 999}


def _codes() -> list[int]:
    return list(NVML_ERROR_CODES.values())


def _assert_actionable(message: str, code: int, where: str) -> None:
    assert message.startswith("GPU detection failed: ")
    constant = next(name for name, value in NVML_ERROR_CODES.items() if value == code)
    assert f"NVML error {code} {constant.removeprefix('NVML_ERROR_')}" in message
    assert f"from {where})" in message
    assert "device='h100'" in message
    assert "Traceback" not in message


def test_record_nvml_output_replays_to_the_same_device_info(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "record_nvml", SRC.parent / "tools" / "record_nvml.py"
    )
    assert spec is not None
    assert spec.loader is not None
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    instance = testing.FakeMigDevice("MIG-5", "NVIDIA A100-SXM4-80GB MIG 7g.80gb", 80 * 2**30, 0, 0)
    live = FakeNvml(
        gpus=[
            fake_gpu("a100", 0, mig_mode=(1, 1), mig_devices=(instance,)),
            fake_gpu("a100", 1),
            fake_gpu("dgx-spark", 2),
        ]
    )
    path = tmp_path / "dump.json"
    assert recorder.main([str(path)], nvml=live) == 0
    assert (live.init_calls, live.shutdown_calls) == (1, 1)
    dump = json.loads(path.read_text(encoding="utf-8"))
    assert dump["devices"][0]["mig_devices"][0]["uuid"] == "MIG-5"
    assert dump["devices"][2]["memory_total"]["nvml_error"] == 3
    environ = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert probe(environ=environ, nvml=FakeNvml.from_dump(path)) == probe(
        environ=environ, nvml=live
    )
