"""detargs: deterministic-inference launch arguments for SGLang.

Resolve a launch that is deterministic on the GPU that will run it, in the flags
of the SGLang release that will run it, with a reason for every value decided:

>>> from detargs import from_argv, resolve
>>> launch = resolve(
...     from_argv(["--model-path", "m", "--enable-deterministic-inference"], "0.5.23"),
...     device="h100",
...     sglang_version="0.5.23",
... )
>>> launch.argv[:4]
('--model-path', 'm', '--attention-backend', 'fa3')

Names are loaded on first use, so ``import detargs`` costs almost nothing and never
imports pynvml or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decisions import Decision
    from .detection import detect
    from .device import Arch, ComputeCapability, DeviceInfo, GpuInfo
    from .errors import (
        CheckError,
        Conflict,
        ConflictError,
        DetargsError,
        DetargsWarning,
        DeviceDetectionError,
        DeviceError,
        InvalidArgsError,
        NondeterminismError,
        PlanMismatchError,
        UnsupportedDeviceError,
    )
    from .nodes import NodePlacement, node_placement
    from .plan import NodeLaunch, Plan, make_plan
    from .resolution import Resolution, resolve
    from .sglang import ServerArgs, TargetVersion, from_argv, target_version, to_argv

__all__ = [
    "Arch",
    "CheckError",
    "ComputeCapability",
    "Conflict",
    "ConflictError",
    "Decision",
    "DetargsError",
    "DetargsWarning",
    "DeviceDetectionError",
    "DeviceError",
    "DeviceInfo",
    "GpuInfo",
    "InvalidArgsError",
    "NodeLaunch",
    "NodePlacement",
    "NondeterminismError",
    "Plan",
    "PlanMismatchError",
    "Resolution",
    "ServerArgs",
    "TargetVersion",
    "UnsupportedDeviceError",
    "__version__",
    "detect",
    "from_argv",
    "make_plan",
    "node_placement",
    "resolve",
    "target_version",
    "to_argv",
]

__version__ = "0.1.0"

_HOMES = {
    "ServerArgs": "sglang",
    "from_argv": "sglang",
    "to_argv": "sglang",
    "detect": "detection",
    "Arch": "device",
    "ComputeCapability": "device",
    "DeviceInfo": "device",
    "GpuInfo": "device",
    "CheckError": "errors",
    "Conflict": "errors",
    "ConflictError": "errors",
    "DetargsError": "errors",
    "DetargsWarning": "errors",
    "DeviceDetectionError": "errors",
    "DeviceError": "errors",
    "InvalidArgsError": "errors",
    "NondeterminismError": "errors",
    "UnsupportedDeviceError": "errors",
    "PlanMismatchError": "errors",
    "NodePlacement": "nodes",
    "node_placement": "nodes",
    "NodeLaunch": "plan",
    "Plan": "plan",
    "make_plan": "plan",
    "Resolution": "resolution",
    "resolve": "resolution",
    "Decision": "decisions",
    "TargetVersion": "sglang",
    "target_version": "sglang",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'detargs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
