"""Resolution, detection and the fixture mixin have no side effects.

They never write ``os.environ`` (the resolved environment is returned, not applied),
never create or write a file, and leave NVML shut down even when a query fails half
way through a probe.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from detargs.cli import main
from detargs.detection import detect
from detargs.errors import DetargsError, DetargsWarning, DeviceDetectionError
from detargs.fixtures import DeterministicServerMixin
from detargs.resolution import resolve
from detargs.sglang.argv import from_argv, to_argv
from detargs.testing import NVML_ERROR_CODES, FakeMigDevice, FakeNvml, fake_gpu

RELEASE = "0.5.23"
WRITE_MODES = set("wax+")


class Fixture(DeterministicServerMixin):
    """A fixture class as an SGLang test would declare one."""

    model = "org/model"
    device = "h100x4"
    sglang_version = RELEASE
    tp_size = 4
    enable_deterministic_inference = True
    extra_args: ClassVar[list[str]] = ["--log-level", "debug"]


def _mixin() -> Any:
    class Fresh(Fixture):  # a new class: the resolution cache starts empty
        pass

    return Fresh.get_server_args(), Fresh.get_server_env(), Fresh.get_resolution().shell()


def _cli(*words: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        return main(list(words))


def _mig_machine() -> FakeNvml:
    """Two GPUs, one in MIG mode with a MIG device, so every NVML query is made."""
    instance = FakeMigDevice(
        uuid="MIG-11111111-2222-3333-4444-555555555555",
        name="NVIDIA A100-SXM4-80GB MIG 1g.10gb",
        memory_total=10 << 30,
        gpu_instance_id=1,
        compute_instance_id=0,
    )
    return FakeNvml(
        gpus=[fake_gpu("a100", 0, mig_mode=(1, 1), mig_devices=(instance,)), fake_gpu("a100", 1)]
    )


OPERATIONS: list[Any] = [
    pytest.param(
        lambda: resolve(
            from_argv(["--enable-deterministic-inference", "--tp", "4"], RELEASE), "h100x4", RELEASE
        ),
        id="resolve",
    ),
    pytest.param(
        lambda: resolve(from_argv(["--tp", "4"], RELEASE), "h100x4", RELEASE),
        id="resolve-not-deterministic",
    ),
    pytest.param(
        lambda: to_argv(from_argv(["--tp", "2", "--log-level", "info"], RELEASE), RELEASE),
        id="argv-codec",
    ),
    pytest.param(lambda: detect("b200x2"), id="detect-profile"),
    pytest.param(
        lambda: detect(environ={"CUDA_VISIBLE_DEVICES": "1,0"}, nvml=_mig_machine()),
        id="detect-nvml",
    ),
    pytest.param(_mixin, id="fixture-mixin"),
    pytest.param(
        lambda: _cli(
            "resolve",
            "--device",
            "h100x2",
            "--sglang-version",
            RELEASE,
            "--format",
            "json",
            "--",
            "--enable-deterministic-inference",
            "--tp",
            "2",
        ),
        id="cli-resolve",
    ),
    pytest.param(
        lambda: _cli(
            "explain",
            "--device",
            "b200",
            "--sglang-version",
            RELEASE,
            "--",
            "--enable-deterministic-inference",
        ),
        id="cli-explain",
    ),
    pytest.param(
        lambda: _cli("launch", "--dry-run", "--device", "h100", "--", "--tp", "1"),
        id="cli-launch-dry-run",
    ),
    pytest.param(lambda: _cli("detect", "--device", "h100x8", "--json"), id="cli-detect"),
    pytest.param(lambda: _cli("flags", "--sglang-version", "0.5.10", "--tp-size"), id="cli-flags"),
]


@pytest.fixture
def no_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cwd, and open() refusing every write mode."""
    real_open = builtins.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if WRITE_MODES & set(mode):
            raise AssertionError(f"opened {file!r} for writing (mode {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    return workdir


def _snapshot(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_os_environ_is_never_written(operation: Callable[[], Any]) -> None:
    before = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetargsWarning)
        operation()
    assert dict(os.environ) == before


def test_the_resolved_environment_is_returned_not_applied() -> None:
    before = dict(os.environ)
    launch = resolve(
        from_argv(["--enable-deterministic-inference", "--tp", "8"], RELEASE), "h100x8", RELEASE
    )
    assert launch.env  # NCCL variables were decided...
    assert dict(os.environ) == before  # ...and not applied
    _, env = launch.popen_args()
    assert env == {**before, **launch.env}
    assert dict(os.environ) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_file_is_written(operation: Callable[[], Any], no_writes: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetargsWarning)
        operation()
    assert _snapshot(no_writes) == []


def test_the_write_guard_works(no_writes: Path) -> None:
    with pytest.raises(AssertionError, match="for writing"):
        open("x", "w")  # noqa: SIM115
    with pytest.raises(AssertionError, match="for writing"):
        Path("y").write_text("z")
    assert _snapshot(no_writes) == []


# --- NVML is always shut down -----------------------------------------------------------


def _calls_made() -> list[str]:
    fake = _mig_machine()
    detect(environ={}, nvml=fake)
    return list(dict.fromkeys(fake.calls))


QUERIES = [name for name in _calls_made() if name not in ("nvmlInit", "nvmlShutdown")]
CODES = [
    pytest.param(code, id=name.lower())
    for name, code in NVML_ERROR_CODES.items()
    if code in (1, 2, 3, 6, 9, 13, 15, 999)
]


def test_the_mig_machine_exercises_every_query() -> None:
    # guard: a probe that stopped calling one of these would make the test below vacuous
    assert {
        "nvmlDeviceGetMigDeviceHandleByIndex",
        "nvmlDeviceGetGpuInstanceId",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetCudaComputeCapability",
    } <= set(QUERIES)


@pytest.mark.parametrize("function", QUERIES)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("index", [None, 1])
def test_nvml_is_shut_down_when_a_query_fails(function: str, code: int, index: int | None) -> None:
    fake = _mig_machine()
    fake.fail(function, code=code, index=index)
    before = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetargsWarning)
        try:
            outcome: object = detect(environ={}, nvml=fake)
        except DeviceDetectionError as error:
            outcome = error
    if isinstance(outcome, DeviceDetectionError):
        assert function in str(outcome)  # the message names the failing call
    else:
        assert getattr(outcome, "source", None) == "nvml"
    assert function in fake.calls or index is not None
    assert fake.init_calls == fake.shutdown_calls == 1
    assert not fake.initialized
    assert dict(os.environ) == before


@pytest.mark.parametrize("code", [9, 12, 18])
def test_nvml_is_not_shut_down_when_init_fails(code: int) -> None:
    fake = _mig_machine()
    fake.fail_on_init = code
    with pytest.raises(DeviceDetectionError):
        detect(environ={}, nvml=fake)
    assert (fake.init_calls, fake.shutdown_calls, fake.initialized) == (1, 0, False)


@pytest.mark.parametrize(
    "exception", [OSError("libnvidia-ml.so: cannot open"), AttributeError("nvmlDeviceGetName")]
)
def test_nvml_is_shut_down_when_the_binding_breaks(exception: BaseException) -> None:
    fake = _mig_machine()
    fake.fail("nvmlDeviceGetUUID", exception=exception)
    with pytest.raises(DetargsError):
        detect(environ={}, nvml=fake)
    assert fake.init_calls == fake.shutdown_calls == 1
    assert not fake.initialized
