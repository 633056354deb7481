"""Find the ``DeviceInfo`` a launch resolves against: argument, environment, or NVML.

May import the standard library and detargs' own modules; ``pynvml`` only through
``detargs.nvml.probe``, which imports it lazily and only when it is actually needed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, TypeAlias

from .device import DeviceInfo
from .errors import DeviceDetectionError
from .profiles import profile

if TYPE_CHECKING:
    from .nvml import NvmlModule

__all__ = ["DETARGS_DEVICE", "DeviceSpec", "detect", "load"]


def __dir__() -> list[str]:
    return __all__


DETARGS_DEVICE: Final = "DETARGS_DEVICE"
"""The environment variable that names a device when no argument does."""

DeviceSpec: TypeAlias = str | os.PathLike[str] | DeviceInfo
"""What ``detect`` accepts: a ``DeviceInfo``, a profile name, or a saved JSON path."""


def detect(
    device: DeviceSpec | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    nvml: NvmlModule | None = None,
) -> DeviceInfo:
    """The GPUs a launch resolves against.

    Precedence, first match wins:

    1. ``device``, the explicit argument: a ``DeviceInfo`` (returned as is), a profile
       name (``"h100"``, ``"h100x8"``, source ``"profile"``) or a path to a saved
       ``DeviceInfo`` JSON (source ``"file"``).
    2. ``DETARGS_DEVICE`` in ``environ`` (default ``os.environ``), in the same string
       forms; unset, empty or ``"auto"`` means "not given".
    3. The NVML probe (``detargs.nvml.probe``), honouring ``CUDA_VISIBLE_DEVICES``.

    ``device=None`` and ``device="auto"`` both mean "not given". ``environ`` is only read.

    >>> detect("h100x2").count
    2
    >>> detect(environ={"DETARGS_DEVICE": "b200"}).launch_gpu().name
    'NVIDIA B200'
    >>> detect("h100", environ={"DETARGS_DEVICE": "b200"}).launch_gpu().name
    'NVIDIA H100 80GB HBM3'
    >>> from detargs.testing import FakeNvml
    >>> fake = FakeNvml.from_profile("l40s", count=2)
    >>> detect("auto", environ={"CUDA_VISIBLE_DEVICES": "1"}, nvml=fake).count
    1
    >>> detect(environ={"DETARGS_DEVICE": "l4"}, nvml=fake).source  # NVML not consulted
    'profile'
    """
    if isinstance(device, DeviceInfo):
        return device
    if device is not None and not isinstance(device, (str, os.PathLike)):
        raise DeviceDetectionError(
            f"device={device!r} ({type(device).__name__}): give a profile name such as 'h100', "
            "the path of a saved DeviceInfo JSON, a DeviceInfo, or None to detect"
        )
    env: Mapping[str, str] = os.environ if environ is None else environ
    if device is not None and not _means_auto(device):
        return _from_spec(device, origin="device")
    from_env = env.get(DETARGS_DEVICE)
    if from_env is not None and not _means_auto(from_env):
        return _from_spec(from_env, origin=DETARGS_DEVICE)
    from .nvml import probe

    return probe(environ=env, nvml=nvml)


def load(path: str | os.PathLike[str]) -> DeviceInfo:
    """Read a ``DeviceInfo`` saved with ``DeviceInfo.to_json()``; its source becomes ``"file"``."""
    return _load(os.fspath(path), origin="device")


def _means_auto(spec: str | os.PathLike[str]) -> bool:
    return isinstance(spec, str) and spec.strip().lower() in ("", "auto")


def _from_spec(spec: str | os.PathLike[str], *, origin: str) -> DeviceInfo:
    if not isinstance(spec, str):
        return _load(os.fspath(spec), origin=origin)
    text = spec.strip()
    path = os.path.expanduser(text)
    if _is_file(path) or text.endswith(".json") or os.sep in text or "/" in text:
        return _load(path, origin=origin)
    try:
        return profile(text)
    except DeviceDetectionError as error:
        raise DeviceDetectionError(f"{_origin(origin, spec)}: {error}") from error


def _is_file(path: str) -> bool:
    # a name too long for the filesystem, or with a NUL byte, is not a file here
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def _load(path: str, *, origin: str) -> DeviceInfo:
    where = _origin(origin, path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError as error:
        raise DeviceDetectionError(
            f"{where}: no such file {str(path)!r}. Pass a profile name (e.g. 'h100') or the "
            "path of a DeviceInfo JSON saved with `detargs detect`."
        ) from error
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DeviceDetectionError(
            f"{where}: cannot read {str(path)!r}: {error}. Pass a profile name (e.g. 'h100') "
            "or the path of a readable DeviceInfo JSON."
        ) from error
    try:
        info = DeviceInfo.from_json(text)
    except ValueError as error:
        raise DeviceDetectionError(
            f"{where}: {str(path)!r} is not a saved DeviceInfo JSON ({error}); save one "
            "on the GPU node with `detargs detect --json > node.json`, or pass a profile name"
        ) from error
    return dataclasses.replace(info, source="file")


def _origin(origin: str, value: str | os.PathLike[str]) -> str:
    shown = os.fspath(value)
    return f"{origin}={shown!r}"
