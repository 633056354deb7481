"""Which physical GPUs a CUDA process sees, and in which order: pure functions.

May import only the standard library, ``detargs.device`` and ``detargs.errors``.
NVML ignores ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER``; the CUDA driver
applies them when it initialises. This module replays the driver's rules against the
physical GPUs NVML listed, so detargs describes the devices the launched process will
get, without creating a CUDA context.

The rules (CUDA Programming Guide, env vars; measured with ``cuInit`` on an H200):

- Unset: every GPU. Empty string: none.
- Entries are split on ``,`` and stripped of whitespace.
- An entry starting ``GPU-`` or ``MIG-`` is a UUID, matched by unique prefix (at least
  one character after the dash; an ambiguous prefix is invalid). Anything else is read
  like ``strtoul``: optional ``+``, then the leading digits (``0abc`` and ``+0`` are 0);
  no leading digit, or a leading ``-``, is invalid.
- Parsing stops at the first invalid, negative or out-of-range entry, and at the first
  switch between integers and UUIDs; the devices before it stay visible.
- A device named twice makes ``cuInit`` fail (``CUDA_ERROR_INVALID_DEVICE``); that is a
  ``DeviceDetectionError`` here, since the launch could not start.
- Integers index CUDA's own enumeration, which ``CUDA_DEVICE_ORDER`` sets: ``PCI_BUS_ID``
  sorts by PCI bus id (what nvidia-smi shows); ``FASTEST_FIRST`` (the default) is an
  undocumented driver heuristic. detargs emulates it as "higher compute capability
  first, then NVML order" (a stable sort), which is exact on machines with one kind of
  GPU and a best guess on mixed ones; when that guess differs from PCI order a warning
  says so and suggests ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.
- MIG: a GPU in MIG mode is used through one of its MIG devices, never whole. CUDA
  enumerates a single MIG device per process (CUDA C Programming Guide: "Only single
  MIG instance enumeration is supported"), so after parsing only the first MIG device
  is kept (with a warning if more were named). A GPU entry (index or ``GPU-`` UUID) for
  a GPU in MIG mode stands for its first MIG device; one with no MIG device is invalid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .device import ComputeCapability
from .errors import DeviceDetectionError

__all__ = ["PhysicalGpu", "VisibleEntry", "visible_devices"]

DeviceOrder = Literal["FASTEST_FIRST", "PCI_BUS_ID"]

_CVD: Final = "CUDA_VISIBLE_DEVICES"
_ORDER: Final = "CUDA_DEVICE_ORDER"
_LEADING_UNSIGNED: Final = re.compile(r"\+?(\d+)")
_UUID_PREFIXES: Final = ("GPU-", "MIG-")


@dataclass(frozen=True)
class PhysicalGpu:
    """One physical GPU as NVML lists it: what CUDA_VISIBLE_DEVICES is matched against."""

    nvml_index: int
    uuid: str
    capability: ComputeCapability
    pci_bus_id: str | None = None
    mig_enabled: bool = False
    mig_uuids: tuple[str, ...] = ()
    """The UUIDs of its MIG devices (``MIG-...``), in NVML order, when in MIG mode."""


@dataclass(frozen=True)
class VisibleEntry:
    """One CUDA device: a whole GPU, or one MIG device of it (``mig_uuid``)."""

    gpu: PhysicalGpu
    mig_uuid: str | None = None

    @property
    def label(self) -> str:
        if self.mig_uuid is not None:
            return f"MIG device {self.mig_uuid} of GPU {self.gpu.nvml_index}"
        return f"GPU {self.gpu.nvml_index} ({self.gpu.uuid})"


@dataclass(frozen=True)
class Visibility:
    """The CUDA devices a process would see, in CUDA order, and why."""

    entries: tuple[VisibleEntry, ...]
    order: DeviceOrder
    warnings: tuple[str, ...] = ()
    empty_reason: str | None = None
    """Why ``entries`` is empty (``None`` when it is not)."""


class _Stop(Exception):
    """Parsing stops here; the message says why (used for warnings and empty reasons)."""


def visible_devices(gpus: Sequence[PhysicalGpu], environ: Mapping[str, str]) -> Visibility:
    """Apply ``CUDA_DEVICE_ORDER`` and ``CUDA_VISIBLE_DEVICES`` from ``environ`` to ``gpus``.

    ``gpus`` are the physical GPUs in NVML order. Raises ``DeviceDetectionError`` when the
    CUDA driver would refuse to initialise (a device named twice).

    >>> h200 = PhysicalGpu(0, "GPU-955f00aa-396e-9499-6579-17a18a6a2700", ComputeCapability(9, 0))
    >>> visible = visible_devices([h200], {"CUDA_VISIBLE_DEVICES": "0,-1"})
    >>> [entry.gpu.nvml_index for entry in visible.entries]
    [0]
    >>> visible_devices([h200], {"CUDA_VISIBLE_DEVICES": "1,0"}).empty_reason
    "CUDA_VISIBLE_DEVICES='1,0': entry '1' is out of range (1 GPU: indices 0..0)"
    """
    warnings: list[str] = []
    order = _device_order(environ, warnings)
    enumeration = _enumerate(gpus, order)
    if order == "FASTEST_FIRST":
        pci_order = _enumerate(gpus, "PCI_BUS_ID")
        if [g.nvml_index for g in enumeration] != [g.nvml_index for g in pci_order]:
            warnings.append(
                "CUDA_DEVICE_ORDER is FASTEST_FIRST (the default) and this machine's GPUs "
                "differ, so CUDA ordinals need not match nvidia-smi indices; detargs assumes "
                "higher compute capability first ("
                + ", ".join(
                    f"cuda {i} = nvidia-smi {g.nvml_index}" for i, g in enumerate(enumeration)
                )
                + "). Set CUDA_DEVICE_ORDER=PCI_BUS_ID to make them match."
            )
    raw = environ.get(_CVD)
    if raw is None:
        entries, empty_reason = _all_devices(enumeration)
    elif raw == "":
        entries, empty_reason = [], f"{_CVD} is set to an empty string, which hides every GPU"
    else:
        entries, empty_reason = _parse(raw, gpus, enumeration, warnings)
    entries = _single_mig(entries, warnings)
    if entries:
        empty_reason = None
    elif empty_reason is None:
        empty_reason = "NVML lists no GPU on this machine"
    return Visibility(tuple(entries), order, tuple(warnings), empty_reason)


def _device_order(environ: Mapping[str, str], warnings: list[str]) -> DeviceOrder:
    value = environ.get(_ORDER)
    if value is None or value == "FASTEST_FIRST":
        return "FASTEST_FIRST"
    if value == "PCI_BUS_ID":
        return "PCI_BUS_ID"
    warnings.append(
        f"{_ORDER}={value!r} is neither FASTEST_FIRST nor PCI_BUS_ID; detargs assumes CUDA "
        "falls back to FASTEST_FIRST, its default."
    )
    return "FASTEST_FIRST"


def _enumerate(gpus: Sequence[PhysicalGpu], order: DeviceOrder) -> list[PhysicalGpu]:
    if order == "PCI_BUS_ID":
        return sorted(gpus, key=lambda g: (_pci_key(g.pci_bus_id), g.nvml_index))
    # Stable: equal capabilities keep NVML order.
    return sorted(gpus, key=lambda g: (-g.capability.major, -g.capability.minor))


def _pci_key(bus_id: str | None) -> tuple[int, ...]:
    """``00000000:1A:00.0`` as numbers, so ``0A`` sorts before ``10`` whatever the case."""
    if bus_id is None:
        return (2**64,)
    parts = re.split(r"[:.]", bus_id.strip())
    try:
        return tuple(int(part, 16) for part in parts)
    except ValueError:
        return (2**64,)


def _all_devices(enumeration: Sequence[PhysicalGpu]) -> tuple[list[VisibleEntry], str | None]:
    entries: list[VisibleEntry] = []
    skipped: list[str] = []
    for gpu in enumeration:
        if not gpu.mig_enabled:
            entries.append(VisibleEntry(gpu))
        elif gpu.mig_uuids:
            entries.append(VisibleEntry(gpu, gpu.mig_uuids[0]))
        else:
            skipped.append(f"GPU {gpu.nvml_index}")
    reason = None
    if skipped and not entries:
        reason = f"every GPU is in MIG mode without a MIG device ({', '.join(skipped)})"
    return entries, reason


def _parse(
    raw: str,
    gpus: Sequence[PhysicalGpu],
    enumeration: Sequence[PhysicalGpu],
    warnings: list[str],
) -> tuple[list[VisibleEntry], str | None]:
    entries: list[VisibleEntry] = []
    kind: Literal["int", "uuid"] | None = None
    tokens = raw.split(",")
    for position, token in enumerate(tokens):
        text = token.strip()
        try:
            token_kind: Literal["int", "uuid"] = (
                "uuid" if text.startswith(_UUID_PREFIXES) else "int"
            )
            if kind is not None and token_kind != kind:
                raise _Stop(
                    f"entry {text!r} switches from {_KIND_NAMES[kind]} to "
                    f"{_KIND_NAMES[token_kind]}, which stops parsing"
                )
            by_uuid = token_kind == "uuid"
            entry = _by_uuid(text, gpus) if by_uuid else _by_ordinal(text, enumeration)
            kind = token_kind
        except _Stop as stop:
            reason = f"{_CVD}={raw!r}: {stop}"
            trailing_empty = text == "" and position == len(tokens) - 1
            if entries and not trailing_empty:
                kept = ", ".join(e.label for e in entries)
                warnings.append(f"{reason}; only the entries before it count ({kept}).")
            return entries, reason
        key = (entry.gpu.nvml_index, entry.mig_uuid)
        if any((e.gpu.nvml_index, e.mig_uuid) == key for e in entries):
            raise DeviceDetectionError(
                f"{_CVD}={raw!r} names {entry.label} twice: the CUDA driver refuses to "
                "initialise (cuInit fails with CUDA_ERROR_INVALID_DEVICE), so no launch can "
                f"start. List each GPU once in {_CVD}."
            )
        entries.append(entry)
    return entries, None


_KIND_NAMES: Final = {"int": "indices", "uuid": "UUIDs"}


def _by_ordinal(text: str, enumeration: Sequence[PhysicalGpu]) -> VisibleEntry:
    if text == "":
        raise _Stop("an empty entry is invalid")
    if text.startswith("-"):
        raise _Stop(f"entry {text!r} is negative")
    match = _LEADING_UNSIGNED.match(text)
    if match is None:
        raise _Stop(f"entry {text!r} is neither an index nor a GPU-/MIG- UUID")
    ordinal = int(match[1])
    if ordinal >= len(enumeration):
        count = len(enumeration)
        span = f"indices 0..{count - 1}" if count else "no index is valid"
        raise _Stop(
            f"entry {text!r} is out of range ({count} GPU{'' if count == 1 else 's'}: {span})"
        )
    return _whole_gpu(enumeration[ordinal], text)


def _whole_gpu(gpu: PhysicalGpu, text: str) -> VisibleEntry:
    if not gpu.mig_enabled:
        return VisibleEntry(gpu)
    if gpu.mig_uuids:
        return VisibleEntry(gpu, gpu.mig_uuids[0])
    raise _Stop(f"entry {text!r} is GPU {gpu.nvml_index}, which is in MIG mode with no MIG device")


def _by_uuid(text: str, gpus: Sequence[PhysicalGpu]) -> VisibleEntry:
    if len(text) <= len("GPU-"):
        raise _Stop(f"entry {text!r} has no UUID digits after the prefix")
    if text.startswith("GPU-"):
        matches = [VisibleEntry(g) for g in gpus if g.uuid.startswith(text)]
    else:
        matches = [VisibleEntry(g, m) for g in gpus for m in g.mig_uuids if m.startswith(text)]
    if not matches:
        raise _Stop(
            f"entry {text!r} matches no {'GPU' if text.startswith('GPU-') else 'MIG device'}"
        )
    if len(matches) > 1:
        raise _Stop(
            f"entry {text!r} is ambiguous: it is a prefix of "
            + ", ".join(m.mig_uuid or m.gpu.uuid for m in matches)
        )
    match = matches[0]
    return match if match.mig_uuid is not None else _whole_gpu(match.gpu, text)


def _single_mig(entries: list[VisibleEntry], warnings: list[str]) -> list[VisibleEntry]:
    migs = [e for e in entries if e.mig_uuid is not None]
    if len(migs) <= 1:
        return entries
    dropped = migs[1:]
    warnings.append(
        "CUDA enumerates one MIG device per process; detargs keeps "
        f"{migs[0].label} and drops " + ", ".join(e.label for e in dropped) + "."
    )
    return [e for e in entries if e not in dropped]
