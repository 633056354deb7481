"""The pytest plugin, run in inner pytest sessions through ``pytester``.

The plugin is registered through the ``pytest11`` entry point (``pip install -e .``);
from a source checkout that is not installed the inner runs name it with ``-p``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

_ENTRY_POINTS = [ep for ep in entry_points(group="pytest11") if ep.name == "detargs"]
PLUGIN = () if _ENTRY_POINTS else ("-p", "detargs.pytest_plugin")


@pytest.fixture(autouse=True)
def _no_device_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # the inner sessions run in this process and read the real environment
    for name in ("DETARGS_DEVICE", "NCCL_ALGO", "NCCL_MIN_NCHANNELS", "NCCL_MAX_NCHANNELS"):
        monkeypatch.delenv(name, raising=False)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *PLUGIN, "-v", *args)


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    if not _ENTRY_POINTS:
        pytest.skip("detargs is not installed (pip install -e .): no entry points")
    assert [ep.value for ep in _ENTRY_POINTS] == ["detargs.pytest_plugin"]


def test_marker_runs_a_test_once_per_profile(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.detargs_devices("h100", "b200")
        def test_backend(resolve_launch, detargs_device):
            launch = resolve_launch(["--enable-deterministic-inference"],
                                    sglang_version="0.5.23")
            arch = detargs_device.launch_gpu().arch.value
            expected = {"hopper": "fa3", "blackwell": "triton"}[arch]
            assert launch.argv[:2] == ("--attention-backend", expected)
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*::test_backend[[]h100[]] PASSED*", "*::test_backend[[]b200[]] PASSED*"]
    )


def test_marker_on_a_class_parametrizes_every_method(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.detargs_devices("h100x2", "b200x2")
        class TestTensorParallel:
            def test_env(self, resolve_launch):
                launch = resolve_launch(["--enable-deterministic-inference", "--tp-size", "2"],
                                        sglang_version="0.5.10")
                assert launch.env == {"NCCL_ALGO": "allreduce:tree"}

            def test_count(self, detargs_device):
                assert detargs_device.count == 2
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*test_env[[]h100x2[]] PASSED*",
            "*test_env[[]b200x2[]] PASSED*",
            "*test_count[[]h100x2[]] PASSED*",
            "*test_count[[]b200x2[]] PASSED*",
        ]
    )


@pytest.mark.parametrize(
    ("options", "expected_gpu", "expected_version"),
    [
        pytest.param(
            ("--detargs-device", "b200", "--detargs-sglang-version", "0.5.10"),
            "NVIDIA B200",
            "0.5.10",
            id="options",
        ),
        pytest.param(
            ("--detargs-device=h100x4", "--detargs-sglang-version=0.5.14"),
            "NVIDIA H100 80GB HBM3",
            "0.5.14",
            id="options-with-equals",
        ),
    ],
)
def test_options_choose_device_and_release(
    pytester: pytest.Pytester,
    options: tuple[str, ...],
    expected_gpu: str,
    expected_version: str,
) -> None:
    pytester.makepyfile(
        f"""
        def test_session_choice(detargs_device, detargs_sglang_version, resolve_launch):
            assert detargs_device.launch_gpu().name == {expected_gpu!r}
            assert detargs_sglang_version == {expected_version!r}
            launch = resolve_launch(["--enable-deterministic-inference"])
            assert launch.sglang_version == {expected_version!r}
            assert launch.device == detargs_device
        """
    )
    _run(pytester, *options).assert_outcomes(passed=1)


def test_the_marker_wins_over_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.detargs_devices("b200")
        def test_marker(detargs_device):
            assert detargs_device.launch_gpu().name == "NVIDIA B200"

        def test_option(detargs_device):
            assert detargs_device.launch_gpu().name == "NVIDIA H100 80GB HBM3"
        """
    )
    _run(pytester, "--detargs-device", "h100").assert_outcomes(passed=2)


def test_device_falls_back_to_detargs_device(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETARGS_DEVICE", "b200x8")
    pytester.makepyfile(
        """
        def test_env_device(detargs_device):
            assert (detargs_device.count, detargs_device.source) == (8, "profile")
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_resolve_launch_takes_server_args_and_resolve_keywords(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from detargs import ConflictError, ServerArgs

        def test_server_args(resolve_launch):
            args = ServerArgs(enable_deterministic_inference=True, sampling_backend="flashinfer")
            with pytest.raises(ConflictError):
                resolve_launch(args)
            launch = resolve_launch(args, on_conflict="override", device="b200")
            assert launch.argv[:4] == ("--attention-backend", "triton",
                                       "--sampling-backend", "pytorch")
        """
    )
    _run(
        pytester, "--detargs-device", "h100", "--detargs-sglang-version", "0.5.23"
    ).assert_outcomes(passed=1)


def test_a_bad_device_option_is_one_usage_error_at_start_up(
    pytester: pytest.Pytester,
) -> None:
    # defect 13: not the same 86-line error in every test
    pytester.makepyfile(
        """
        def test_device(detargs_device):
            pass
        """
    )
    result = _run(pytester, "--detargs-device", "h1000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --detargs-device 'h1000': unknown device 'h1000': did you mean h100*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_options_and_marker_are_documented(pytester: pytest.Pytester) -> None:
    help_result = _run(pytester, "--help")
    help_result.stdout.fnmatch_lines(
        ["detargs:", "*--detargs-device*", "*--detargs-sglang-version*"]
    )
    markers = _run(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.detargs_devices(*profiles)*"])


def test_the_marker_passes_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.detargs_devices("a100")
        def test_strict(detargs_device):
            assert detargs_device.launch_gpu().capability.sm == "sm80"
        """
    )
    _run(pytester, "--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("marker", "uses", "message"),
    [
        pytest.param('("h100")', "", "the test uses no detargs fixture", id="no-fixture"),
        pytest.param("()", "detargs_device", "names no device", id="no-device"),
    ],
)
def test_a_marker_that_would_test_nothing_is_an_error(
    pytester: pytest.Pytester, marker: str, uses: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.detargs_devices{marker}
        def test_nothing({uses}):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*detargs_devices on *test_nothing*{message}*"])


def test_resolve_launch_with_a_device_does_not_detect(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the session device is unusable here; a call that names its device never needs it
    pytester.makepyfile(
        """
        def test_named_device(resolve_launch):
            launch = resolve_launch(["--enable-deterministic-inference"], device="b200",
                                    sglang_version="0.5.23")
            assert launch.argv[:2] == ("--attention-backend", "triton")
        """
    )

    def no_gpu(**_: object) -> None:
        raise AssertionError("NVML was asked although the call names its device")

    monkeypatch.setattr("detargs.nvml.probe", no_gpu)
    _run(pytester, "--detargs-device", "auto").assert_outcomes(passed=1)
