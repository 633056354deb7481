"""The detargs pytest plugin (registered through the ``pytest11`` entry point).

It only wires options and fixtures to the library:

- ``--detargs-device D`` and ``--detargs-sglang-version V`` choose the device (a
  profile, a saved JSON path, or ``auto``) and the SGLang release for the session:
  for these fixtures and for ``DeterministicServerMixin`` classes that do not set
  their own; a value that names no device or release stops pytest at start-up;
- ``detargs_device`` gives the ``DeviceInfo``; ``resolve_launch(argv_or_args, **kw)``
  resolves a launch for that device and release;
- ``@pytest.mark.detargs_devices("h100", "b200")`` runs a test once per device;
- ``detargs_check(url, **options)`` runs a short determinism check against a launched
  server and fails the test (or, from a class-scoped fixture, every test of the class)
  with the divergence report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # imported lazily below: loading the plugin must not slow every pytest start
    from .check import CheckReport
    from .device import DeviceInfo
    from .resolution import Resolution
    from .sglang import ServerArgs

__all__ = ["CheckServer", "ResolveLaunch"]

ResolveLaunch = Callable[..., "Resolution"]
CheckServer = Callable[..., "CheckReport"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("detargs")
    group.addoption(
        "--detargs-device",
        default=None,
        help="device for detargs fixtures: a profile, a DeviceInfo JSON path or auto",
    )
    group.addoption(
        "--detargs-sglang-version",
        default=None,
        help="SGLang release detargs resolves for (default: installed, else newest)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "detargs_devices(*profiles): run the test once per detargs device profile"
    )
    from ._session import SessionDefaults, set_defaults

    device = config.getoption("--detargs-device")
    version = config.getoption("--detargs-sglang-version")
    _check_options(device, version)
    set_defaults(SessionDefaults(device=device, sglang_version=version))


def pytest_unconfigure(config: pytest.Config) -> None:
    from ._session import SessionDefaults, set_defaults

    set_defaults(SessionDefaults())


def _check_options(device: str | None, version: str | None) -> None:
    """A bad option is one usage error at start-up, not the same error in every test."""
    from .errors import DetargsError

    if version is not None:
        from .engines import ENGINE

        try:
            ENGINE.target_version(version)
        except DetargsError as error:
            text = str(error).removeprefix("--sglang-version: ")
            raise pytest.UsageError(f"--detargs-sglang-version: {text}") from None
    if device is not None and device.strip().lower() not in ("", "auto"):
        # a profile or a saved file is read now; "auto" (NVML) waits for the first test
        from .detection import detect

        try:
            detect(device)
        except DetargsError as error:
            text = str(error).removeprefix(f"device={device!r}: ")
            raise pytest.UsageError(f"--detargs-device {device!r}: {text}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("detargs_devices")
    if marker is None:
        return
    # a marker that parametrizes nothing would pass silently without testing any device
    if "_detargs_device_spec" not in metafunc.fixturenames:
        raise pytest.UsageError(
            f"@pytest.mark.detargs_devices on {metafunc.definition.nodeid}: the test uses no "
            "detargs fixture (detargs_device or resolve_launch), so it would run on no device"
        )
    if not marker.args:
        raise pytest.UsageError(
            f"@pytest.mark.detargs_devices on {metafunc.definition.nodeid} names no device; "
            'write e.g. @pytest.mark.detargs_devices("h100", "b200")'
        )
    metafunc.parametrize("_detargs_device_spec", list(marker.args), indirect=True, ids=str)


@pytest.fixture
def _detargs_device_spec(request: pytest.FixtureRequest) -> Any:
    """The device as given: a marker's profile, else ``--detargs-device`` (None: detect)."""
    return getattr(request, "param", None) or request.config.getoption("--detargs-device")


@pytest.fixture
def detargs_device(_detargs_device_spec: Any) -> DeviceInfo:
    """The device detargs resolves for: a marker's profile, else the option, else detection."""
    from .detection import detect

    return detect(_detargs_device_spec)


@pytest.fixture
def detargs_sglang_version(request: pytest.FixtureRequest) -> str:
    from .engines import ENGINE

    return ENGINE.target_version(request.config.getoption("--detargs-sglang-version")).release


@pytest.fixture
def resolve_launch(
    request: pytest.FixtureRequest, _detargs_device_spec: Any, detargs_sglang_version: str
) -> ResolveLaunch:
    """``resolve_launch(["--enable-deterministic-inference", ...], **resolve_kwargs)``.

    The session's device is detected only when a call names no ``device=``.
    """
    from .engines import ENGINE
    from .resolution import resolve
    from .sglang import ServerArgs

    def _resolve(args: ServerArgs | Sequence[str], **kwargs: Any) -> Resolution:
        version = kwargs.pop("sglang_version", detargs_sglang_version)
        if not isinstance(args, ServerArgs):
            values, _ = ENGINE.read_argv(list(args), ENGINE.target_version(version))
            args = ServerArgs.from_values(values)
        device = kwargs.pop("device", None)
        if device is None:
            device = request.getfixturevalue("detargs_device")
        return resolve(args, device=device, sglang_version=version, **kwargs)

    return _resolve


@pytest.fixture(scope="session")
def detargs_check() -> CheckServer:
    """``detargs_check(url, **options)``: ``detargs.check.check`` with the short settings
    (``detargs.check.SHORT``, changed by ``options``); a server that is not deterministic
    fails the caller with the report. Session-scoped, so class- and module-scoped server
    fixtures can use it."""
    from .check import SHORT, check

    def _check(url: str, **options: Any) -> CheckReport:
        api = options.pop("api", None)
        model = options.pop("model", None)
        report = check(url, SHORT, api=api, model=model, **options)
        if not report.deterministic:
            pytest.fail(f"the server is not deterministic: {report.summary()}", pytrace=False)
        return report

    return _check
