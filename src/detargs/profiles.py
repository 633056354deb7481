"""Built-in named GPUs, for resolving launch arguments without the GPU at hand.

May import only the standard library, ``detargs.device`` and ``detargs.errors``.

Each profile holds the facts a real node would report: the name as ``nvidia-smi``
prints it, the compute capability from NVIDIA's CUDA GPUs table, and the total
memory NVML reports (``nvidia-smi --query-gpu=memory.total``, in MiB, which is a
little below the marketed size). A profile carries no UUID, PCI bus id or driver
version: those belong to one machine, and inventing them would make a replayed
report look probed.

>>> profile("h100x2").count
2
>>> profile("dgx-spark").launch_gpu().capability.sm
'sm121'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final, NamedTuple

from .device import Arch, ComputeCapability, DeviceInfo, GpuInfo, Vendor
from .errors import DeviceDetectionError

__all__ = ["MAX_COUNT", "PROFILES", "lookup", "profile", "profile_names"]


def __dir__() -> list[str]:
    return __all__


_MIB: Final = 2**20
MAX_COUNT: Final = 64
"""The most GPUs one profile may describe (CUDA's own enumeration limit)."""


class GpuProfile(NamedTuple):
    """The facts one built-in GPU profile stands for."""

    key: str
    """The canonical profile name, e.g. ``h100``."""
    name: str
    """The name as nvidia-smi prints it."""
    capability: ComputeCapability
    memory_mib: int | None
    """Total memory as nvidia-smi prints it (MiB); ``None`` where NVML cannot tell."""
    aliases: tuple[str, ...] = ()
    note: str = ""
    """Which product variant the facts describe."""
    vendor: Vendor = "nvidia"

    @property
    def arch(self) -> Arch:
        return Arch.from_capability(self.capability, self.vendor)

    @property
    def memory_total_bytes(self) -> int | None:
        return None if self.memory_mib is None else self.memory_mib * _MIB


def _cc(major: int, minor: int) -> ComputeCapability:
    return ComputeCapability(major, minor)


# Sorted by architecture, newest first. Memory is what NVML reports on the named
# variant; where a product has several (SXM/PCIe/NVL), the note says which one.
PROFILES: Final[tuple[GpuProfile, ...]] = (
    GpuProfile(
        "b300",
        "NVIDIA B300 SXM6 AC",
        _cc(10, 3),
        275040,
        ("b300-sxm",),
        "Blackwell Ultra, HGX B300",
    ),
    GpuProfile("gb300", "NVIDIA GB300", _cc(10, 3), 284208, (), "Grace Blackwell Ultra"),
    GpuProfile("b200", "NVIDIA B200", _cc(10, 0), 183359, ("b200-sxm",), "HGX B200"),
    GpuProfile("gb200", "NVIDIA GB200", _cc(10, 0), 189471, (), "Grace Blackwell, NVL72"),
    GpuProfile(
        "rtx-pro-6000",
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
        _cc(12, 0),
        97887,
        ("rtx-pro-6000-blackwell", "rtxpro6000"),
        "96 GB GDDR7, Server Edition",
    ),
    GpuProfile(
        "rtx-5090",
        "NVIDIA GeForce RTX 5090",
        _cc(12, 0),
        32607,
        ("rtx5090", "5090"),
        "consumer Blackwell",
    ),
    GpuProfile(
        "dgx-spark",
        "NVIDIA GB10",
        _cc(12, 1),
        None,
        ("gb10", "spark"),
        "unified memory: NVML reports no device memory",
    ),
    GpuProfile("h200", "NVIDIA H200", _cc(9, 0), 143771, ("h200-sxm",), "141 GB HBM3e, SXM"),
    GpuProfile("gh200", "NVIDIA GH200 480GB", _cc(9, 0), 97871, (), "96 GB HBM3 variant"),
    GpuProfile("h100", "NVIDIA H100 80GB HBM3", _cc(9, 0), 81559, ("h100-sxm",), "80 GB SXM"),
    GpuProfile("h20", "NVIDIA H20", _cc(9, 0), 97871, (), "96 GB HBM3"),
    GpuProfile("l40s", "NVIDIA L40S", _cc(8, 9), 46068, (), "48 GB GDDR6"),
    GpuProfile("l4", "NVIDIA L4", _cc(8, 9), 23034, (), "24 GB GDDR6"),
    GpuProfile(
        "rtx-4090", "NVIDIA GeForce RTX 4090", _cc(8, 9), 24564, ("rtx4090", "4090"), "consumer Ada"
    ),
    GpuProfile("a100", "NVIDIA A100-SXM4-80GB", _cc(8, 0), 81920, ("a100-80gb",), "80 GB SXM4"),
    GpuProfile("a100-40gb", "NVIDIA A100-SXM4-40GB", _cc(8, 0), 40960, (), "40 GB SXM4"),
    GpuProfile("a10", "NVIDIA A10", _cc(8, 6), 23028, (), "24 GB GDDR6"),
    GpuProfile("t4", "Tesla T4", _cc(7, 5), 15360, (), "16 GB GDDR6"),
    GpuProfile("v100", "Tesla V100-SXM2-32GB", _cc(7, 0), 32768, ("v100-32gb",), "32 GB SXM2"),
    # AMD Instinct, for ROCm launches: NVML cannot see them, so only profiles or JSON.
    # Capability is the gfx target as ROCm torch reports it; memory is not recorded.
    GpuProfile(
        "mi355x", "AMD Instinct MI355X", _cc(9, 5), None, ("mi355",), "CDNA4, gfx950", "amd"
    ),
    GpuProfile(
        "mi325x", "AMD Instinct MI325X", _cc(9, 4), None, ("mi325",), "CDNA3, gfx942", "amd"
    ),
    GpuProfile(
        "mi300x", "AMD Instinct MI300X", _cc(9, 4), None, ("mi300",), "CDNA3, gfx942", "amd"
    ),
)

_BY_NAME: Final[Mapping[str, GpuProfile]] = {
    name: entry for entry in PROFILES for name in (entry.key, *entry.aliases)
}
_COUNT_SUFFIX: Final = re.compile(r"^(?P<name>.+?)\s*[x*](?P<count>\d+)$")


def profile_names() -> tuple[str, ...]:
    """The canonical profile names, newest architecture first (aliases not listed)."""
    return tuple(entry.key for entry in PROFILES)


def lookup(name: str) -> tuple[GpuProfile, int | None]:
    """Find a profile by name or alias, with a count suffix if one is written.

    Case, spaces, underscores and a leading ``nvidia`` are ignored, so ``"H100"``,
    ``"rtx_pro_6000"`` and ``"NVIDIA H200"`` all work; ``"h100x8"`` means 8 H100s.

    >>> lookup("NVIDIA H200x4")[0].key, lookup("NVIDIA H200x4")[1]
    ('h200', 4)
    """
    key = _normalise(name)
    if key in _BY_NAME:
        return _BY_NAME[key], None
    # "h100 x 4" normalises to "h100-x-4"; the count suffix is what is meant.
    key = re.sub(r"-*([x*])-*(\d+)$", r"x\2", key)
    match = _COUNT_SUFFIX.match(key)
    if match and match["name"] in _BY_NAME:
        return _BY_NAME[match["name"]], int(match["count"])
    raise DeviceDetectionError(_unknown_message(name, key))


@functools.lru_cache(maxsize=256)
def profile(name: str, count: int | None = None) -> DeviceInfo:
    """A ``DeviceInfo`` (source ``"profile"``) for ``count`` GPUs of a named profile.

    ``count`` may also be written in the name (``"h100x8"``); giving both is allowed
    only when they agree. The default is one GPU.

    >>> [gpu.name for gpu in profile("l40s", count=2).gpus]
    ['NVIDIA L40S', 'NVIDIA L40S']
    """
    entry, written = lookup(name)
    if count is not None and written is not None and count != written:
        raise DeviceDetectionError(
            f"device {name!r} names {written} GPUs but count={count} was passed: "
            "give the count once"
        )
    chosen = count if count is not None else written if written is not None else 1
    if not 1 <= chosen <= MAX_COUNT:
        raise DeviceDetectionError(
            f"a GPU count must be between 1 and {MAX_COUNT}, not {chosen}: write e.g. "
            f"{entry.key}x8, or {entry.key} for one"
        )
    gpus = tuple(
        GpuInfo(
            index=index,
            name=entry.name,
            capability=entry.capability,
            arch=entry.arch,
            vendor=entry.vendor,
            memory_total_bytes=entry.memory_total_bytes,
        )
        for index in range(chosen)
    )
    return DeviceInfo(gpus=gpus, source="profile")


def _normalise(name: str) -> str:
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"^nvidia-+", "", key)


def _unknown_message(name: str, key: str) -> str:
    base = _COUNT_SUFFIX.match(key)
    candidates = list(_BY_NAME)
    import difflib  # only this message needs it

    close = difflib.get_close_matches(base["name"] if base else key, candidates, n=3, cutoff=0.6)
    suggestion = f"did you mean {' or '.join(close)}? " if close else ""
    return (
        f"unknown device {name!r}: {suggestion}Known devices: {', '.join(profile_names())} "
        "(add xN for N GPUs, e.g. h100x8), or a path to a saved DeviceInfo JSON."
    )
