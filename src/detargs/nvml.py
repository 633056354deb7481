"""Probe the GPUs through NVML: the only detargs module that imports ``pynvml``.

``pynvml`` (from the ``nvidia-ml-py`` package) is imported lazily inside ``probe``,
never at import time, and never torch: NVML reads the driver without creating a CUDA
context, so probing is safe before a launcher forks its workers. NVML ignores
``CUDA_VISIBLE_DEVICES``; ``detargs._visible`` applies it (and ``CUDA_DEVICE_ORDER``)
the way the CUDA driver would.

Every failure becomes a ``DeviceDetectionError`` whose message says what went wrong and
what to do (see ``_ADVICE``, one entry per NVML error code); NVML is shut down in a
``finally`` whenever ``nvmlInit`` succeeded. ``environ`` is read, never written.

>>> from detargs.testing import FakeNvml
>>> info = probe(environ={}, nvml=FakeNvml.from_profile("h200"))
>>> info.launch_gpu().name, info.cuda_driver_version
('NVIDIA H200', '13.0')
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from ._visible import PhysicalGpu, VisibleEntry, visible_devices
from .device import ComputeCapability, DeviceInfo, GpuInfo, MigInfo
from .errors import DeviceDetectionError

__all__ = ["NvmlModule", "probe"]


def __dir__() -> list[str]:
    return __all__


NvmlModule: TypeAlias = Any
"""A module-like object with ``pynvml``'s names: ``pynvml`` itself or
``detargs.testing.FakeNvml``. (``pynvml`` generates its error classes at import time,
so no static type describes it.)"""

_NOT_SUPPORTED: Final = 3
_NOT_FOUND: Final = 6
_FUNCTION_NOT_FOUND: Final = 13
_OFFLINE_HINT: Final = (
    "To resolve for a known GPU without probing, pass device='h100' (or --device h100, "
    "or set DETARGS_DEVICE=h100)."
)

# code -> (constant, what happened, what to do). Every code nvidia-ml-py 13.x defines.
_ADVICE: Final[Mapping[int, tuple[str, str, str]]] = {
    1: (
        "UNINITIALIZED",
        "NVML was not initialised when queried",
        "another thread or library may have shut NVML down during the probe; retry",
    ),
    2: (
        "INVALID_ARGUMENT",
        "NVML rejected a query argument",
        "the driver and nvidia-ml-py may disagree about this GPU; upgrade nvidia-ml-py "
        "(pip install -U nvidia-ml-py) and retry",
    ),
    3: (
        "NOT_SUPPORTED",
        "this GPU or driver does not support a query detargs needs",
        "upgrade the NVIDIA driver, or check that the GPU is a supported NVIDIA datacenter "
        "or RTX GPU",
    ),
    4: (
        "NO_PERMISSION",
        "no permission to query the GPU",
        "make sure this user can open /dev/nvidia* (in a container, start it with the "
        "NVIDIA runtime, e.g. docker run --gpus all)",
    ),
    5: (
        "ALREADY_INITIALIZED",
        "NVML reported that it was already initialised",
        "NVML no longer raises this; retry, and upgrade nvidia-ml-py if it persists",
    ),
    6: (
        "NOT_FOUND",
        "NVML could not find a GPU it had just listed",
        "a GPU may have been removed or re-partitioned (MIG) during the probe; retry, and "
        "check nvidia-smi",
    ),
    7: (
        "INSUFFICIENT_SIZE",
        "an NVML buffer was too small",
        "nvidia-ml-py is older than the driver; upgrade it (pip install -U nvidia-ml-py)",
    ),
    8: (
        "INSUFFICIENT_POWER",
        "a GPU is not getting enough external power",
        "check the GPU's power cables, then run nvidia-smi",
    ),
    9: (
        "DRIVER_NOT_LOADED",
        "no NVIDIA driver found",
        "the NVIDIA kernel driver is not loaded: install or load it until nvidia-smi works",
    ),
    10: (
        "TIMEOUT",
        "NVML timed out",
        "the driver may be busy or hung; retry, and check nvidia-smi and dmesg",
    ),
    11: (
        "IRQ_ISSUE",
        "the NVIDIA driver reported an interrupt (IRQ) problem",
        "check dmesg for NVRM errors; the node may need a reboot",
    ),
    12: (
        "LIBRARY_NOT_FOUND",
        "no NVIDIA driver found",
        "libnvidia-ml.so.1 could not be loaded: install the NVIDIA driver, or run the "
        "container with the NVIDIA runtime (docker run --gpus all)",
    ),
    13: (
        "FUNCTION_NOT_FOUND",
        "the NVIDIA driver is older than nvidia-ml-py expects",
        "a function nvidia-ml-py calls is missing from the driver: upgrade the driver, or "
        "install an nvidia-ml-py release that matches it",
    ),
    14: (
        "CORRUPTED_INFOROM",
        "a GPU's infoROM is corrupted",
        "run nvidia-smi -q and contact the hardware vendor; do not run on that GPU",
    ),
    15: (
        "GPU_IS_LOST",
        "a GPU is lost (it fell off the bus or stopped responding)",
        "check dmesg for Xid errors; the GPU needs a reset or the node a reboot",
    ),
    16: (
        "RESET_REQUIRED",
        "a GPU requires a reset",
        "reset it (nvidia-smi --gpu-reset -i <index>) or reboot the node",
    ),
    17: (
        "OPERATING_SYSTEM",
        "the operating system blocked the NVML request",
        "check device permissions and the security policy (SELinux, AppArmor, container seccomp)",
    ),
    18: (
        "LIB_RM_VERSION_MISMATCH",
        "the NVIDIA driver's library and kernel module versions differ",
        "this usually follows a driver upgrade without a reboot: reboot the node, or reload "
        "the nvidia kernel modules",
    ),
    19: (
        "IN_USE",
        "a GPU is busy with another operation",
        "a reset or MIG reconfiguration may be in progress; retry when it has finished",
    ),
    20: ("MEMORY", "NVML ran out of host memory", "free host memory and retry"),
    21: (
        "NO_DATA",
        "NVML had no data for a query",
        "retry; if it persists, upgrade the NVIDIA driver",
    ),
    22: (
        "VGPU_ECC_NOT_SUPPORTED",
        "this vGPU does not support ECC",
        "disable ECC on the host GPU or use a vGPU profile that supports it",
    ),
    23: (
        "INSUFFICIENT_RESOURCES",
        "NVML ran out of resources",
        "retry when fewer processes use the GPU",
    ),
    24: (
        "FREQ_NOT_SUPPORTED",
        "NVML reported an unsupported clock frequency",
        "detargs only reads; upgrade nvidia-ml-py and retry",
    ),
    25: (
        "ARGUMENT_VERSION_MISMATCH",
        "nvidia-ml-py and the NVIDIA driver disagree on a structure version",
        "install an nvidia-ml-py release that matches the driver, or upgrade the driver",
    ),
    26: (
        "DEPRECATED",
        "NVML refused a deprecated function",
        "upgrade nvidia-ml-py (pip install -U nvidia-ml-py)",
    ),
    27: (
        "NOT_READY",
        "a GPU is not ready yet",
        "it may still be initialising after boot or reset; retry in a few seconds "
        "(persistence mode, nvidia-smi -pm 1, avoids this)",
    ),
    28: (
        "GPU_NOT_FOUND",
        "NVML could not find the GPU",
        "the GPU may be hidden from this container or removed; check nvidia-smi",
    ),
    29: (
        "INVALID_STATE",
        "a GPU is in an invalid state",
        "a MIG change or reset may be pending; check nvidia-smi -q, then reset or reboot",
    ),
    30: (
        "RESET_TYPE_NOT_SUPPORTED",
        "NVML reported an unsupported reset type",
        "detargs only reads; check nvidia-smi and retry",
    ),
    999: (
        "UNKNOWN",
        "NVML failed with an unknown error",
        "check nvidia-smi and dmesg; the driver may need a reboot",
    ),
}


def error_message(code: int, nvml_text: str, where: str) -> str:
    """The actionable message for NVML error ``code`` raised by ``where``.

    >>> print(error_message(12, "NVML Shared Library Not Found", "nvmlInit"))
    GPU detection failed: no NVIDIA driver found (NVML error 12 LIBRARY_NOT_FOUND: NVML Shared \
Library Not Found, from nvmlInit); libnvidia-ml.so.1 could not be loaded: install the NVIDIA \
driver, or run the container with the NVIDIA runtime (docker run --gpus all). To resolve for a \
known GPU without probing, pass device='h100' (or --device h100, or set DETARGS_DEVICE=h100).
    """
    constant, what, advice = _ADVICE.get(
        code,
        (f"code {code}", "NVML failed with an error detargs does not know", "check nvidia-smi"),
    )
    return (
        f"GPU detection failed: {what} (NVML error {code} {constant}: {nvml_text}, "
        f"from {where}); {advice}. {_OFFLINE_HINT}"
    )


def probe(environ: Mapping[str, str] | None = None, nvml: NvmlModule | None = None) -> DeviceInfo:
    """The GPUs this process would see through CUDA, read through NVML.

    ``environ`` (default ``os.environ``) supplies ``CUDA_VISIBLE_DEVICES`` and
    ``CUDA_DEVICE_ORDER``; ``nvml`` (default: ``import pynvml``) may be a
    ``detargs.testing.FakeNvml``. Warnings about assumptions (e.g. CUDA's device order
    on mixed machines) are data in ``DeviceInfo.warnings``: ``resolve()`` carries them
    into ``Resolution.warnings`` and the CLI prints them. Raises ``DeviceDetectionError``
    on any failure.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    lib = _import_pynvml() if nvml is None else nvml
    session = _Session(lib)
    try:
        session.call("nvmlInit")
        try:
            facts = _query(session)
        finally:
            session.shutdown()
    except _NvmlFailure as failure:
        raise DeviceDetectionError(failure.message) from failure.error
    return _device_info(facts, env)


def _import_pynvml() -> NvmlModule:
    try:
        # A deprecated `pynvml` distribution installs an import hook that warns with
        # FutureWarning on the first `import pynvml`; under -W error that would abort
        # detection, and the warning is about packaging, not about the GPU.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import pynvml
    except ImportError as error:
        raise DeviceDetectionError(
            f"GPU detection failed: the NVML binding is not installed (import pynvml: "
            f"{error}). Install it with pip install nvidia-ml-py. {_OFFLINE_HINT}"
        ) from error
    except OSError as error:
        raise DeviceDetectionError(
            f"GPU detection failed: the NVML binding could not be loaded (import pynvml: "
            f"{error}). Reinstall nvidia-ml-py. {_OFFLINE_HINT}"
        ) from error
    return pynvml


@dataclass
class _Session:
    """Calls NVML, turning every failure into a DeviceDetectionError that names the call."""

    lib: NvmlModule
    initialized: bool = False

    def call(self, function: str, *args: Any, gpu: int | None = None) -> Any:
        where = function if gpu is None else f"{function} on GPU {gpu}"
        error_class = getattr(self.lib, "NVMLError", None)
        try:
            result = getattr(self.lib, function)(*args)
        except Exception as error:
            if error_class is not None and isinstance(error, error_class):
                code = int(getattr(error, "value", 999))
                message = error_message(code, _safe_str(error), where)
                raise _NvmlFailure(code, message, error) from error
            if isinstance(error, (OSError, ImportError, AttributeError, UnicodeDecodeError)):
                raise DeviceDetectionError(
                    f"GPU detection failed: the NVML binding broke in {where} "
                    f"({type(error).__name__}: {error}). Reinstall nvidia-ml-py "
                    f"(pip install -U nvidia-ml-py) and check nvidia-smi. {_OFFLINE_HINT}"
                ) from error
            raise
        if function == "nvmlInit":
            self.initialized = True
        return result

    def optional(self, function: str, *args: Any, gpu: int | None = None) -> Any:
        """``None`` where the GPU or driver does not support the query."""
        try:
            return self.call(function, *args, gpu=gpu)
        except _NvmlFailure as failure:
            if failure.code in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
                return None
            raise

    def shutdown(self) -> None:
        if not self.initialized:
            return
        self.initialized = False
        try:
            self.lib.nvmlShutdown()
        except Exception as error:
            error_class = getattr(self.lib, "NVMLError", None)
            # A failed shutdown changes nothing about the facts already read, and must
            # not replace the error that is already propagating.
            if error_class is None or not isinstance(error, error_class):
                raise


class _NvmlFailure(Exception):
    """An NVML error inside the probe; ``probe`` turns it into a DeviceDetectionError."""

    def __init__(self, code: int, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error


@dataclass
class _MigFacts:
    uuid: str
    name: str
    memory_total: int | None
    gpu_instance_id: int | None
    compute_instance_id: int | None


@dataclass
class _GpuFacts:
    nvml_index: int
    name: str
    uuid: str
    capability: ComputeCapability
    memory_total: int | None
    pci_bus_id: str | None
    mig_supported: bool
    mig_enabled: bool
    migs: list[_MigFacts] = field(default_factory=list)


@dataclass
class _Facts:
    gpus: list[_GpuFacts]
    driver_version: str | None
    cuda_driver_version: str | None


def _query(session: _Session) -> _Facts:
    driver = _text(session.call("nvmlSystemGetDriverVersion"))
    cuda = _cuda_version(session)
    count = int(session.call("nvmlDeviceGetCount"))
    return _Facts([_query_gpu(session, index) for index in range(count)], driver, cuda)


def _cuda_version(session: _Session) -> str | None:
    function = "nvmlSystemGetCudaDriverVersion"
    if hasattr(session.lib, f"{function}_v2"):
        function += "_v2"
    version = session.optional(function)
    if version is None:
        return None
    version = int(version)
    return f"{version // 1000}.{(version % 1000) // 10}"


def _query_gpu(session: _Session, index: int) -> _GpuFacts:
    handle = session.call("nvmlDeviceGetHandleByIndex", index, gpu=index)
    major, minor = session.call("nvmlDeviceGetCudaComputeCapability", handle, gpu=index)
    pci = session.optional("nvmlDeviceGetPciInfo", handle, gpu=index)
    mig_mode = session.optional("nvmlDeviceGetMigMode", handle, gpu=index)
    enabled = mig_mode is not None and int(mig_mode[0]) == 1
    gpu = _GpuFacts(
        nvml_index=index,
        name=_text(session.call("nvmlDeviceGetName", handle, gpu=index)),
        uuid=_text(session.call("nvmlDeviceGetUUID", handle, gpu=index)),
        capability=ComputeCapability(int(major), int(minor)),
        memory_total=_memory(session, handle, index),
        pci_bus_id=None if pci is None else _text(pci.busId),
        mig_supported=mig_mode is not None,
        mig_enabled=enabled,
    )
    if enabled:
        gpu.migs = _query_migs(session, handle, index)
    return gpu


def _memory(session: _Session, handle: Any, index: int) -> int | None:
    # GB10 (DGX Spark) has unified memory and answers NOT_SUPPORTED here.
    memory = session.optional("nvmlDeviceGetMemoryInfo", handle, gpu=index)
    return None if memory is None else int(memory.total)


def _query_migs(session: _Session, parent: Any, index: int) -> list[_MigFacts]:
    slots = int(session.call("nvmlDeviceGetMaxMigDeviceCount", parent, gpu=index))
    migs: list[_MigFacts] = []
    for slot in range(slots):
        try:
            handle = session.call("nvmlDeviceGetMigDeviceHandleByIndex", parent, slot, gpu=index)
        except _NvmlFailure as failure:
            if failure.code == _NOT_FOUND:  # an empty slot
                continue
            raise
        if not bool(session.call("nvmlDeviceIsMigDeviceHandle", handle, gpu=index)):
            continue
        migs.append(
            _MigFacts(
                uuid=_text(session.call("nvmlDeviceGetUUID", handle, gpu=index)),
                name=_text(session.call("nvmlDeviceGetName", handle, gpu=index)),
                memory_total=_memory(session, handle, index),
                gpu_instance_id=session.optional("nvmlDeviceGetGpuInstanceId", handle, gpu=index),
                compute_instance_id=session.optional(
                    "nvmlDeviceGetComputeInstanceId", handle, gpu=index
                ),
            )
        )
    return migs


def _device_info(facts: _Facts, environ: Mapping[str, str]) -> DeviceInfo:
    physical = [
        PhysicalGpu(
            nvml_index=gpu.nvml_index,
            uuid=gpu.uuid,
            capability=gpu.capability,
            pci_bus_id=gpu.pci_bus_id,
            mig_enabled=gpu.mig_enabled,
            mig_uuids=tuple(mig.uuid for mig in gpu.migs),
        )
        for gpu in facts.gpus
    ]
    visibility = visible_devices(physical, environ)
    by_index = {gpu.nvml_index: gpu for gpu in facts.gpus}
    gpus = tuple(
        _gpu_info(cuda_index, entry, by_index[entry.gpu.nvml_index])
        for cuda_index, entry in enumerate(visibility.entries)
    )
    return DeviceInfo(
        gpus=gpus,
        driver_version=facts.driver_version,
        cuda_driver_version=facts.cuda_driver_version,
        source="nvml",
        cuda_visible_devices=environ.get("CUDA_VISIBLE_DEVICES"),
        empty_reason=visibility.empty_reason,
        warnings=visibility.warnings,
    )


def _gpu_info(cuda_index: int, entry: VisibleEntry, gpu: _GpuFacts) -> GpuInfo:
    common: dict[str, Any] = {
        "index": cuda_index,
        "nvml_index": gpu.nvml_index,
        "capability": gpu.capability,
        "pci_bus_id": gpu.pci_bus_id,
    }
    if entry.mig_uuid is None:
        mig = MigInfo(enabled=gpu.mig_enabled) if gpu.mig_supported else None
        return GpuInfo(
            name=gpu.name, uuid=gpu.uuid, memory_total_bytes=gpu.memory_total, mig=mig, **common
        )
    instance = next(m for m in gpu.migs if m.uuid == entry.mig_uuid)
    return GpuInfo(
        name=instance.name,
        uuid=instance.uuid,
        memory_total_bytes=instance.memory_total,
        mig=MigInfo(
            enabled=True,
            parent_uuid=gpu.uuid,
            gpu_instance_id=instance.gpu_instance_id,
            compute_instance_id=instance.compute_instance_id,
        ),
        **common,
    )


def _text(value: Any) -> str:
    """Old bindings (pynvml 11.0-11.4) return bytes; NVML pads with NULs."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).rstrip("\x00")


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # pynvml's __str__ calls into NVML for unknown codes
        return repr(error)
