"""One warning channel: what detargs assumed is data on its results, said at the edge.

The device's own warnings (CUDA's device order on a mixed machine) reach
``Resolution.warnings`` after the release's and the argv's; the CLI prints each once,
as ``detargs: warning:``, and prints what was assumed before an error next to it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from detargs import DetargsWarning, DeviceInfo, detect, from_argv, resolve
from detargs.cli import main
from detargs.testing import FakeNvml, fake_gpu

NEWER = "SGLang 0.5.99 is not in the flag catalogue"
REPEATED = "--tp 2 is overridden by the later --tp 1"
ORDER = "CUDA_DEVICE_ORDER is FASTEST_FIRST"


@pytest.fixture
def mixed() -> DeviceInfo:
    """An A100 + H100 machine, probed through NVML (a stand-in) as the launch would be."""
    return detect(environ={}, nvml=FakeNvml(gpus=[fake_gpu("a100", 0), fake_gpu("h100", 1)]))


@pytest.fixture
def mixed_report(mixed: DeviceInfo, tmp_path: Path) -> str:
    path = tmp_path / "node.json"
    path.write_text(mixed.to_json(), encoding="utf-8")
    return str(path)


def _position(texts: tuple[str, ...] | list[str], start: str) -> int:
    return next(i for i, text in enumerate(texts) if text.startswith(start))


def test_the_device_warnings_are_in_the_resolution_after_the_release_and_the_argv(
    mixed: DeviceInfo,
) -> None:
    assert any(text.startswith(ORDER) for text in mixed.warnings)
    launch = resolve(
        ["--enable-deterministic-inference", "--tp", "2", "--tp", "1"], mixed, "0.5.99", gpu_index=0
    )
    said = launch.warnings
    assert _position(said, NEWER) < _position(said, REPEATED) < _position(said, ORDER)
    assert said.count(mixed.warnings[0]) == 1


def test_a_device_given_to_a_launch_that_decides_nothing_still_says_its_warnings(
    mixed: DeviceInfo,
) -> None:
    assert resolve(["--tp", "1"], mixed, "0.5.23").warnings == mixed.warnings


def test_resolve_and_detect_raise_no_python_warning(mixed: DeviceInfo) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        launch = resolve(
            ["--enable-deterministic-inference", "--tp", "2", "--tp", "1"],
            mixed,
            "0.5.99",
            gpu_index=0,
        )
    assert launch.warnings


def test_from_argv_warns_what_it_cannot_return() -> None:
    with pytest.warns(DetargsWarning) as caught:
        from_argv(["--tp", "2", "--tp", "1"], "0.5.99")
    assert len(caught) == 2
    assert str(caught[0].message).startswith(NEWER)
    assert str(caught[1].message).startswith(REPEATED)


def test_the_cli_says_every_warning_of_a_resolution_once(
    capsys: pytest.CaptureFixture[str], mixed_report: str
) -> None:
    code = main(
        [
            "resolve",
            "--device",
            mixed_report,
            "--gpu-index",
            "0",
            "--sglang-version",
            "0.5.99",
            "--format",
            "json",
            "--",
            "--enable-deterministic-inference",
            "--tp",
            "2",
            "--tp",
            "1",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    printed = [
        line.removeprefix("detargs: warning: ")
        for line in err.splitlines()
        if line.startswith("detargs: warning: ")
    ]
    assert printed == json.loads(out)["warnings"]
    assert len(printed) == len(set(printed)) >= 3
    assert _position(printed, NEWER) < _position(printed, REPEATED) < _position(printed, ORDER)


def test_the_cli_says_what_was_assumed_before_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "resolve",
            "--device",
            "h100",
            "--sglang-version",
            "0.5.99",
            "--",
            "--enable-deterministic-inference",
            "--tp",
            "2",
            "--tp",
            "1",
            "--sampling-backend",
            "flashinfer",
        ]
    )
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2
    assert lines[0].startswith(f"detargs: warning: {NEWER}")
    assert lines[1].startswith(f"detargs: warning: {REPEATED}")
    assert lines[2].startswith("detargs: error: ")
    assert sum(line.startswith("detargs: warning:") for line in lines) == 2


def test_detect_on_the_cli_says_the_device_warnings_on_stderr(
    capsys: pytest.CaptureFixture[str], mixed_report: str
) -> None:
    assert main(["detect", "--device", mixed_report]) == 0
    _, err = capsys.readouterr()
    assert err.startswith(f"detargs: warning: {ORDER}")
