"""detect(): explicit argument, then DETARGS_DEVICE, then NVML; saved reports replay."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
from pathlib import Path

import pytest

from detargs.detection import detect, load
from detargs.device import DeviceInfo
from detargs.errors import DeviceDetectionError
from detargs.nvml import probe
from detargs.testing import FakeNvml, fake_device

FIXTURE = Path(__file__).parent / "fixtures" / "nvml" / "h200-real.json"


@pytest.fixture
def saved_b200(tmp_path: Path) -> Path:
    path = tmp_path / "node.json"
    path.write_text(fake_device("b200", count=2).to_json(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argument", "env_device", "expected_name", "expected_source"),
    [
        pytest.param("h100", "b200", "NVIDIA H100 80GB HBM3", "profile", id="argument-beats-env"),
        pytest.param("h100", None, "NVIDIA H100 80GB HBM3", "profile", id="argument-alone"),
        pytest.param(None, "b200", "NVIDIA B200", "profile", id="env-beats-nvml"),
        pytest.param("auto", "b200", "NVIDIA B200", "profile", id="auto-defers-to-env"),
        pytest.param(None, None, "NVIDIA H200", "nvml", id="nvml-last"),
        pytest.param("auto", None, "NVIDIA H200", "nvml", id="auto-probes"),
        pytest.param(None, "", "NVIDIA H200", "nvml", id="empty-env-is-unset"),
        pytest.param(None, "auto", "NVIDIA H200", "nvml", id="env-auto-probes"),
        pytest.param(" AUTO ", None, "NVIDIA H200", "nvml", id="auto-any-case"),
    ],
)
def test_precedence(
    argument: str | None, env_device: str | None, expected_name: str, expected_source: str
) -> None:
    environ = {} if env_device is None else {"DETARGS_DEVICE": env_device}
    fake = FakeNvml.from_dump(FIXTURE)
    info = detect(argument, environ=environ, nvml=fake)
    assert (info.launch_gpu().name, info.source) == (expected_name, expected_source)
    # NVML is touched only when nothing named a device.
    assert fake.init_calls == (1 if expected_source == "nvml" else 0)


def test_device_info_passes_through_untouched() -> None:
    given = fake_device("l4")
    assert detect(given, environ={"DETARGS_DEVICE": "b200"}) is given


def test_nvml_honours_cuda_visible_devices_from_environ() -> None:
    fake = FakeNvml.from_profile("h100", count=4)
    info = detect(environ={"CUDA_VISIBLE_DEVICES": "3,1"}, nvml=fake)
    assert [gpu.nvml_index for gpu in info.gpus] == [3, 1]


@pytest.mark.parametrize("as_path", [True, False], ids=["pathlike", "string"])
def test_saved_report_replays_as_file(saved_b200: Path, as_path: bool) -> None:
    info = detect(saved_b200 if as_path else str(saved_b200), environ={})
    assert info.source == "file"
    assert dataclasses.replace(info, source="fake") == fake_device("b200", count=2)


def test_saved_report_from_env(saved_b200: Path) -> None:
    info = detect(environ={"DETARGS_DEVICE": str(saved_b200)})
    assert (info.source, info.count) == ("file", 2)


def test_probe_json_round_trip(tmp_path: Path) -> None:
    probed = probe(environ={"CUDA_VISIBLE_DEVICES": "0"}, nvml=FakeNvml.from_dump(FIXTURE))
    path = tmp_path / "h200.json"
    path.write_text(probed.to_json(indent=2), encoding="utf-8")
    replayed = load(path)
    assert replayed.source == "file"
    assert dataclasses.replace(replayed, source="nvml") == probed
    assert replayed.cuda_visible_devices == "0"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{not json", "is not a saved DeviceInfo JSON", id="invalid-json"),
        pytest.param('{"gpus": []}', "source: Field required", id="missing-field"),
        pytest.param('{"gpus": [], "source": "cloud"}', "source", id="bad-source"),
        pytest.param("[]", "is not a saved DeviceInfo JSON", id="wrong-shape"),
    ],
)
def test_bad_file_names_the_path(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DeviceDetectionError, match=message) as raised:
        detect(path, environ={})
    assert str(path) in str(raised.value)
    assert str(raised.value).startswith("device=")


def test_bad_file_from_env_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(DeviceDetectionError, match=r"^DETARGS_DEVICE=") as raised:
        detect(environ={"DETARGS_DEVICE": str(path)})
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("argument", "environ", "start"),
    [
        pytest.param("missing/node.json", {}, "device='missing/node.json'", id="argument"),
        pytest.param(None, {"DETARGS_DEVICE": "gone.json"}, "DETARGS_DEVICE='gone.json'", id="env"),
    ],
)
def test_missing_file_names_path_and_origin(
    argument: str | None, environ: dict[str, str], start: str
) -> None:
    with pytest.raises(DeviceDetectionError, match="no such file") as raised:
        detect(argument, environ=environ)
    assert str(raised.value).startswith(start)


def test_unknown_profile_from_env_names_the_variable() -> None:
    with pytest.raises(DeviceDetectionError) as raised:
        detect(environ={"DETARGS_DEVICE": "h1000"})
    message = str(raised.value)
    assert message.startswith("DETARGS_DEVICE='h1000': unknown device 'h1000'")
    assert "did you mean h100" in message


def test_unknown_profile_argument_names_the_argument() -> None:
    with pytest.raises(DeviceDetectionError, match=r"^device='hopper': unknown device"):
        detect("hopper", environ={})


def test_nvml_failure_surfaces_when_nothing_names_a_device() -> None:
    fake = FakeNvml(fail_on_init=9)
    with pytest.raises(DeviceDetectionError, match="no NVIDIA driver found"):
        detect(environ={}, nvml=fake)


def test_a_device_of_another_type_is_a_detection_error() -> None:
    with pytest.raises(DeviceDetectionError, match=r"device=8 \(int\)"):
        detect(8, environ={})  # type: ignore[arg-type]


def test_detect_returns_device_info_types() -> None:
    assert isinstance(detect("h100", environ={}), DeviceInfo)


def test_module_doctests() -> None:
    module = importlib.import_module("detargs.detection")
    assert doctest.testmod(module).failed == 0
