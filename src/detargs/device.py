"""What detargs knows about the GPUs a launch will run on: pure, typed data.

This module may import only the standard library and ``detargs.errors``. It never
imports ``pynvml`` (that is ``detargs.nvml``'s job) nor torch, so a ``DeviceInfo``
can be built, saved, replayed and reasoned about on a machine without a GPU. The
values are frozen dataclasses, not pydantic models: a cold ``detargs resolve``
builds them on every launch and must not pay for pydantic's import and schema
building. Only reading a saved JSON report validates through pydantic, lazily.

The facts, from small to large:

- ``ComputeCapability``: ``(major, minor)``, e.g. ``9.0``; ordered like a tuple.
- ``Arch``: the architecture family derived from the capability. Rules key on it,
  and on the exact capability where a family is too coarse (``sm100`` vs ``sm120``
  are both Blackwell).
- ``MigInfo``: the MIG state of a GPU, or which MIG instance a CUDA device is.
- ``GpuInfo``: one CUDA device as the launch will see it.
- ``DeviceInfo``: every visible GPU in CUDA order, plus where the facts came from.

>>> cc = ComputeCapability.parse("10.3")
>>> str(cc), cc.sm, Arch.from_capability(cc).value
('10.3', 'sm103', 'blackwell')
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from .errors import DeviceDetectionError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

__all__ = ["Arch", "ComputeCapability", "DeviceInfo", "GpuInfo", "MigInfo", "Vendor"]


def __dir__() -> list[str]:
    return __all__


_CAPABILITY_PATTERN = re.compile(r"^\s*(?P<major>\d+)\.(?P<minor>\d+)\s*$")
_SM_PATTERN = re.compile(r"^\s*sm_?(?P<digits>\d{2,3})[af]?\s*$", re.IGNORECASE)


class ComputeCapability(NamedTuple):
    """A CUDA compute capability, ``major.minor``; compares like a tuple.

    >>> ComputeCapability(9, 0) < ComputeCapability(10, 0)
    True
    >>> ComputeCapability.parse("sm_120a")
    ComputeCapability(major=12, minor=0)
    """

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def sm(self) -> str:
        """The ``sm`` name nvcc and kernel libraries use: ``sm90``, ``sm100``, ``sm121``."""
        return f"sm{self.major}{self.minor}"

    @classmethod
    def parse(cls, text: str) -> ComputeCapability:
        """Read ``"9.0"``, or an ``sm`` name (``"sm90"``, ``"sm_100a"``, ``"sm121"``).

        Raises ``ValueError`` for anything else.
        """
        match = _CAPABILITY_PATTERN.match(text)
        if match:
            return cls(int(match["major"]), int(match["minor"]))
        match = _SM_PATTERN.match(text)
        if match:
            # The minor version is always the last digit: sm90 is 9.0, sm103 is 10.3.
            digits = match["digits"]
            return cls(int(digits[:-1]), int(digits[-1]))
        raise ValueError(
            f"not a compute capability: {text!r} (expected 'major.minor' such as '9.0', "
            "or an sm name such as 'sm90')"
        )

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # saved reports write [9, 0]; hand-written ones may say "9.0" or "sm90"
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(_coerce_capability)


class Arch(str, enum.Enum):
    """A GPU architecture family, derived from the compute capability.

    ``UNKNOWN`` covers capabilities older than Volta and newer than any family
    detargs knows: rules must treat it as "no facts", never guess.

    >>> Arch.from_capability(ComputeCapability(8, 9))
    <Arch.ADA: 'ada'>
    >>> Arch.from_capability(ComputeCapability(6, 1))
    <Arch.UNKNOWN: 'unknown'>
    """

    VOLTA = "volta"
    TURING = "turing"
    AMPERE = "ampere"
    ADA = "ada"
    HOPPER = "hopper"
    BLACKWELL = "blackwell"
    CDNA2 = "cdna2"
    CDNA3 = "cdna3"
    CDNA4 = "cdna4"
    UNKNOWN = "unknown"

    @classmethod
    def from_capability(
        cls, capability: ComputeCapability | tuple[int, int], vendor: Vendor = "nvidia"
    ) -> Arch:
        """The family a capability belongs to (NVIDIA's CUDA GPUs table).

        For AMD GPUs the capability is what ROCm builds of torch report, the gfx
        target's digits: gfx90a is 9.0 (CDNA2), gfx942 is 9.4 (CDNA3), gfx950 9.5 (CDNA4).
        """
        major, minor = capability
        if vendor == "amd":
            return _AMD_ARCH.get((major, minor), cls.UNKNOWN)
        exact = _ARCH_BY_CAPABILITY.get((major, minor))
        if exact is not None:
            return exact
        # Families whose every minor version is one architecture: Hopper is 9.x,
        # Blackwell spans 10.x (datacenter), 11.x (Jetson Thor) and 12.x (consumer, GB10).
        return _ARCH_BY_MAJOR.get(major, cls.UNKNOWN)

    def __str__(self) -> str:
        return self.value


_ARCH_BY_CAPABILITY: dict[tuple[int, int], Arch] = {
    (7, 0): Arch.VOLTA,
    (7, 2): Arch.VOLTA,
    (7, 5): Arch.TURING,
    (8, 0): Arch.AMPERE,
    (8, 6): Arch.AMPERE,
    (8, 7): Arch.AMPERE,
    (8, 9): Arch.ADA,
}
_AMD_ARCH: dict[tuple[int, int], Arch] = {
    (9, 0): Arch.CDNA2,
    (9, 4): Arch.CDNA3,
    (9, 5): Arch.CDNA4,
}
_AMD_TARGETS: dict[tuple[int, int], str] = {(9, 0): "gfx90a", (9, 4): "gfx942", (9, 5): "gfx950"}
_ARCH_BY_MAJOR: dict[int, Arch] = {
    9: Arch.HOPPER,
    10: Arch.BLACKWELL,
    11: Arch.BLACKWELL,
    12: Arch.BLACKWELL,
}

Vendor = Literal["nvidia", "amd"]
"""Who makes the GPU. NVML sees NVIDIA GPUs only; AMD ones come from profiles or JSON."""

DeviceSource = Literal["nvml", "profile", "fake", "file"]
"""Where a ``DeviceInfo`` came from: a live NVML probe, a built-in profile, a test
double (``detargs.testing``) or a saved JSON report."""


_FORBID_UNKNOWN_KEYS: dict[str, Any] = {"extra": "forbid"}
"""pydantic's config for these dataclasses when a saved report is read."""


@dataclass(frozen=True, kw_only=True)
class MigInfo:
    """The MIG (Multi-Instance GPU) state of one CUDA device.

    ``GpuInfo.mig`` is ``None`` when the GPU does not support MIG at all (NVML says
    "not supported"), ``MigInfo(enabled=False)`` for a MIG-capable GPU used whole, and
    carries the parent and instance ids when the CUDA device is a MIG instance.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID_UNKNOWN_KEYS

    enabled: bool
    """MIG mode is currently enabled on the physical GPU."""
    parent_uuid: str | None = None
    """The physical GPU's UUID, when this CUDA device is a MIG instance."""
    gpu_instance_id: int | None = None
    """The GPU instance (GI) id of the MIG instance, as NVML reports it."""
    compute_instance_id: int | None = None
    """The compute instance (CI) id of the MIG instance, as NVML reports it."""

    @property
    def is_instance(self) -> bool:
        """This CUDA device is a MIG instance, not a whole GPU."""
        return self.parent_uuid is not None


@dataclass(frozen=True, kw_only=True)
class GpuInfo:
    """One GPU as the launched process will see it through CUDA.

    ``capability`` may be given as ``"9.0"``, ``"sm90"`` or ``(9, 0)``. ``arch`` may be
    omitted (it is derived from ``capability``); when given it must agree with it.

    >>> GpuInfo(index=0, name="NVIDIA B200", capability="10.0").arch
    <Arch.BLACKWELL: 'blackwell'>
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID_UNKNOWN_KEYS

    index: int
    """The CUDA ordinal within the visible set (what ``cuda:N`` means in the process)."""
    nvml_index: int | None = None
    """The NVML / nvidia-smi index of the physical GPU (``None`` for profiles)."""
    name: str
    """The name as nvidia-smi prints it, e.g. ``NVIDIA H200``."""
    uuid: str | None = None
    """``GPU-...`` (or ``MIG-...`` for a MIG instance); ``None`` when not known."""
    capability: ComputeCapability
    """The exact compute capability; keeps sm100/103/110/120/121 apart."""
    arch: Arch = Arch.UNKNOWN
    """The architecture family; derived from ``capability`` when omitted."""
    vendor: Vendor = "nvidia"
    """``amd`` for ROCm GPUs, whose capability is their gfx target's digits."""
    memory_total_bytes: int | None = None
    """Total device memory as NVML reports it; ``None`` when NVML cannot tell (GB10)."""
    mig: MigInfo | None = None
    """MIG state; ``None`` when the GPU does not support MIG."""
    pci_bus_id: str | None = None
    """The PCI bus id NVML reports, e.g. ``00000000:00:06.0``."""

    def __post_init__(self) -> None:
        _check_types(
            self,
            {
                "index": int,
                "nvml_index": (int, None),
                "name": str,
                "uuid": (str, None),
                "memory_total_bytes": (int, None),
                "mig": (MigInfo, None),
                "pci_bus_id": (str, None),
            },
        )
        if self.vendor not in ("nvidia", "amd"):
            raise ValueError(f"GpuInfo.vendor must be 'nvidia' or 'amd', not {self.vendor!r}")
        capability = _coerce_capability(self.capability)
        expected = Arch.from_capability(capability, self.vendor)
        arch = Arch.UNKNOWN if self.arch is None else Arch(self.arch)
        if arch is Arch.UNKNOWN:
            arch = expected
        elif arch is not expected:
            raise ValueError(
                f"arch {arch.value!r} contradicts capability {capability} "
                f"(which is {expected.value!r}); omit arch to derive it"
            )
        object.__setattr__(self, "capability", capability)
        object.__setattr__(self, "arch", arch)

    @property
    def memory_gib(self) -> float | None:
        """``memory_total_bytes`` in GiB, for display."""
        if self.memory_total_bytes is None:
            return None
        return self.memory_total_bytes / 2**30

    @property
    def target(self) -> str:
        """The kernel target: ``sm90``, ``sm100`` … on NVIDIA, ``gfx942`` … on AMD."""
        if self.vendor == "amd":
            major, minor = self.capability
            return _AMD_TARGETS.get((major, minor), f"gfx{major}{minor}?")
        return self.capability.sm

    def summary(self) -> str:
        """One line: ``0: NVIDIA H200 (9.0, sm90, hopper)``."""
        return f"{self.index}: {self.name} ({self.capability}, {self.target}, {self.arch})"


def _check_types(value: object, expected: dict[str, Any]) -> None:
    # pydantic checked these when the device types were models; a wrong type here would
    # only surface later, far from where the value was built
    for name, kinds in expected.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        got = getattr(value, name)
        if got is None and None in kinds:
            continue
        types = tuple(kind for kind in kinds if kind is not None)
        if (isinstance(got, bool) and bool not in types) or not isinstance(got, types):
            wanted = " or ".join("None" if kind is None else kind.__name__ for kind in kinds)
            raise ValueError(f"{type(value).__name__}.{name} must be {wanted}, not {got!r}")


def _coerce_capability(value: Any) -> ComputeCapability:
    if isinstance(value, ComputeCapability):
        return value
    if isinstance(value, str):
        return ComputeCapability.parse(value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value)
    ):
        return ComputeCapability(*value)
    raise ValueError(f"not a compute capability: {value!r} (expected '9.0', 'sm90' or [9, 0])")


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """Every GPU visible to the launch, in CUDA order, and where the facts came from.

    Save a node's report with ``to_json()`` (or ``detargs detect --json``) and replay it
    with ``from_json()`` (or ``detargs.detect(path)``).

    >>> info = DeviceInfo(gpus=(GpuInfo(index=0, name="NVIDIA H200", capability="9.0"),),
    ...                   source="fake")
    >>> info.launch_gpu().arch
    <Arch.HOPPER: 'hopper'>
    >>> DeviceInfo.from_json(info.to_json()) == info
    True
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID_UNKNOWN_KEYS

    gpus: tuple[GpuInfo, ...]
    """The visible GPUs in CUDA order: ``gpus[i].index == i``."""
    driver_version: str | None = None
    """The NVIDIA driver version, e.g. ``580.159.04``; ``None`` when not probed."""
    cuda_driver_version: str | None = None
    """The highest CUDA version the driver supports, e.g. ``13.0``."""
    source: DeviceSource
    """Where these facts came from."""
    cuda_visible_devices: str | None = None
    """The ``CUDA_VISIBLE_DEVICES`` value honoured when probing (``None``: unset)."""
    empty_reason: str | None = None
    """Why no GPU is visible, when ``gpus`` is empty."""
    warnings: tuple[str, ...] = ()
    """Assumptions made while detecting (e.g. about CUDA's device order)."""

    def __post_init__(self) -> None:
        gpus = tuple(self.gpus)
        for position, gpu in enumerate(gpus):
            if not isinstance(gpu, GpuInfo):
                raise ValueError(f"gpus[{position}] must be a GpuInfo, not {gpu!r}")
            if gpu.index != position:
                raise ValueError(
                    f"gpus must be in CUDA order: gpus[{position}] has index {gpu.index}"
                )
        if self.source not in ("nvml", "profile", "fake", "file"):
            raise ValueError(
                f"DeviceInfo.source must be nvml, profile, fake or file, not {self.source!r}"
            )
        object.__setattr__(self, "gpus", gpus)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: what ``to_json`` writes and ``from_dict`` reads."""
        return json.loads(self.to_json())  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON, for ``from_json``, ``detect(path)`` or another machine."""
        return json.dumps(dataclasses.asdict(self), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> DeviceInfo:
        """Read a report written by ``to_json``; ``capability`` may be ``"9.0"`` and
        ``arch`` omitted in a hand-written one.

        Raises ``ValueError`` saying which keys are wrong.
        """
        return _validated(cls, "validate_json", text)

    @classmethod
    def from_dict(cls, data: Any) -> DeviceInfo:
        """``from_json`` for already parsed data."""
        return _validated(cls, "validate_python", data)

    @property
    def count(self) -> int:
        """How many GPUs are visible."""
        return len(self.gpus)

    def launch_gpu(self, index: int | None = None) -> GpuInfo:
        """The GPU a launch's rules key on.

        Without ``index`` every visible GPU must share one compute capability (a
        tensor-parallel launch runs the same kernels on all of them); the first is
        returned. With ``index``, that CUDA ordinal is returned.

        Raises ``DeviceDetectionError`` when no GPU is visible (saying why), when
        ``index`` is out of range, or when the visible GPUs differ and no index is given.
        """
        if not self.gpus:
            reason = self.empty_reason or "the device list is empty"
            raise DeviceDetectionError(
                f"no GPU is visible ({self.source}): {reason}. Make a GPU visible, or pass "
                "device='h100' (or --device h100, or DETARGS_DEVICE=h100) to resolve for a "
                "known GPU."
            )
        if index is not None:
            if not 0 <= index < len(self.gpus):
                raise DeviceDetectionError(
                    f"GPU index {index} is out of range: {_count_phrase(len(self.gpus))} "
                    f"visible (indices 0..{len(self.gpus) - 1}); "
                    f"{self._listing()}"
                )
            return self.gpus[index]
        capabilities = {gpu.capability for gpu in self.gpus}
        if len(capabilities) > 1:
            raise DeviceDetectionError(
                f"the visible GPUs differ ({self._listing()}), so no single GPU decides the "
                "launch: pass an index (launch_gpu(0), or --gpu 0) or set "
                "CUDA_VISIBLE_DEVICES to GPUs of one kind."
            )
        return self.gpus[0]

    def describe(self) -> str:
        """A readable table of the visible GPUs, for the CLI.

        >>> print(DeviceInfo(gpus=(), source="nvml", empty_reason="no GPU").describe())
        No GPU visible (source: nvml): no GPU
        """
        header = self._header()
        if not self.gpus:
            lines = [f"No GPU visible ({header}): {self.empty_reason or 'the list is empty'}"]
        else:
            lines = [f"{_count_phrase(len(self.gpus))} visible ({header})"]
            rows: list[tuple[str, ...]] = [
                (
                    "cuda",
                    "nvml",
                    "name",
                    "capability",
                    "arch",
                    "memory",
                    "mig",
                    "pci bus id",
                    "uuid",
                )
            ]
            rows += [_row(gpu) for gpu in self.gpus]
            widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
            lines += [
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
                for row in rows
            ]
        lines += [f"warning: {text}" for text in self.warnings]
        return "\n".join(lines)

    def _header(self) -> str:
        parts = [f"source: {self.source}"]
        if self.driver_version is not None:
            parts.append(f"driver {self.driver_version}")
        if self.cuda_driver_version is not None:
            parts.append(f"CUDA {self.cuda_driver_version}")
        if self.cuda_visible_devices is not None:
            parts.append(f"CUDA_VISIBLE_DEVICES={self.cuda_visible_devices!r}")
        return ", ".join(parts)

    def _listing(self) -> str:
        return ", ".join(gpu.summary() for gpu in self.gpus)


def _validated(cls: type[DeviceInfo], method: str, data: Any) -> DeviceInfo:
    # pydantic only here: reading a saved report is rare, and it has the best messages
    from pydantic import ValidationError

    try:
        info: DeviceInfo = getattr(_adapter(cls), method)(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: "
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()[:5]
        )
        raise ValueError(problems) from None
    return info


_ADAPTERS: dict[type[DeviceInfo], Any] = {}


def _adapter(cls: type[DeviceInfo]) -> Any:
    # built once: a plan reads one saved report per node, and building it is most of a read
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def _count_phrase(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"


def _row(gpu: GpuInfo) -> tuple[str, ...]:
    memory = "?" if gpu.memory_gib is None else f"{gpu.memory_gib:.1f} GiB"
    if gpu.mig is None:
        mig = "-"
    elif gpu.mig.is_instance:
        mig = f"gi {gpu.mig.gpu_instance_id} ci {gpu.mig.compute_instance_id}"
    else:
        mig = "on" if gpu.mig.enabled else "off"
    return (
        str(gpu.index),
        "-" if gpu.nvml_index is None else str(gpu.nvml_index),
        gpu.name,
        f"{gpu.capability} ({gpu.target})",
        gpu.arch.value,
        memory,
        mig,
        gpu.pci_bus_id or "-",
        gpu.uuid or "-",
    )
