"""Test doubles for code that detects or consumes GPUs: public and documented.

May import only the standard library and detargs' pure modules (``device``,
``profiles``, ``errors``); never pytest, never ``pynvml``, never torch.

- ``FakeNvml``: a stand-in for the ``pynvml`` module, built from a recorded NVML dump
  (``tools/record_nvml.py`` writes them), from a profile, or from ``FakeGpu`` specs
  (mixed machines, MIG). It keeps ``pynvml``'s function names, return types (including
  the ``c_uint`` that ``nvmlDeviceIsMigDeviceHandle`` really returns), its ``NVMLError``
  hierarchy, and can fail any call with any NVML error code. It counts
  ``init_calls``/``shutdown_calls`` so a test can prove NVML is always shut down.
- ``fake_device``: a ``DeviceInfo`` (source ``"fake"``) for unit tests of code that
  only needs a device.

>>> from detargs.nvml import probe
>>> fake = FakeNvml.from_profile("h100", count=2)
>>> probe(environ={"CUDA_VISIBLE_DEVICES": "1"}, nvml=fake).launch_gpu().nvml_index
1
>>> fake.fail("nvmlDeviceGetName", code=15, index=1)
>>> probe(environ={}, nvml=fake)
Traceback (most recent call last):
...
detargs.errors.DeviceDetectionError: GPU detection failed: a GPU is lost ...
>>> (fake.init_calls, fake.shutdown_calls, fake.initialized)
(2, 2, False)
"""

from __future__ import annotations

import ctypes
import json
import os
import string
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Final

from .device import Arch, ComputeCapability, DeviceInfo, GpuInfo, MigInfo
from .profiles import lookup

__all__ = ["FakeGpu", "FakeNvml", "fake_device", "fake_gpu"]


def __dir__() -> list[str]:
    return __all__


NVML_ERROR_CODES: Final[Mapping[str, int]] = {
    "NVML_ERROR_UNINITIALIZED": 1,
    "NVML_ERROR_INVALID_ARGUMENT": 2,
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NO_PERMISSION": 4,
    "NVML_ERROR_ALREADY_INITIALIZED": 5,
    "NVML_ERROR_NOT_FOUND": 6,
    "NVML_ERROR_INSUFFICIENT_SIZE": 7,
    "NVML_ERROR_INSUFFICIENT_POWER": 8,
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_TIMEOUT": 10,
    "NVML_ERROR_IRQ_ISSUE": 11,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
    "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
    "NVML_ERROR_CORRUPTED_INFOROM": 14,
    "NVML_ERROR_GPU_IS_LOST": 15,
    "NVML_ERROR_RESET_REQUIRED": 16,
    "NVML_ERROR_OPERATING_SYSTEM": 17,
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": 18,
    "NVML_ERROR_IN_USE": 19,
    "NVML_ERROR_MEMORY": 20,
    "NVML_ERROR_NO_DATA": 21,
    "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED": 22,
    "NVML_ERROR_INSUFFICIENT_RESOURCES": 23,
    "NVML_ERROR_FREQ_NOT_SUPPORTED": 24,
    "NVML_ERROR_ARGUMENT_VERSION_MISMATCH": 25,
    "NVML_ERROR_DEPRECATED": 26,
    "NVML_ERROR_NOT_READY": 27,
    "NVML_ERROR_GPU_NOT_FOUND": 28,
    "NVML_ERROR_INVALID_STATE": 29,
    "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED": 30,
    "NVML_ERROR_UNKNOWN": 999,
}
"""The 31 ``NVML_ERROR_*`` codes of nvidia-ml-py 13.x."""

# pynvml's fixed messages (``NVMLError._errcode_to_string``); other codes fall back to
# nvmlErrorString in the real library, imitated here by the constant's words.
_MESSAGES: Final[Mapping[int, str]] = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    7: "Insufficient Size",
    8: "Insufficient External Power",
    9: "Driver Not Loaded",
    10: "Timeout",
    11: "Interrupt Request Issue",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    14: "Corrupted infoROM",
    15: "GPU is lost",
    16: "GPU requires restart",
    17: "The operating system has blocked the request.",
    18: "RM has detected an NVML/RM version mismatch.",
    20: "Insufficient Memory",
    999: "Unknown Error",
}
_CODE_NAMES: Final[Mapping[int, str]] = {code: name for name, code in NVML_ERROR_CODES.items()}


class NVMLError(Exception):
    """Behaves like ``pynvml.NVMLError``: ``NVMLError(code)`` builds the matching
    ``NVMLError_*`` subclass, ``.value`` is the code, ``str()`` is pynvml's message and
    equality compares codes."""

    _class_by_code: dict[int, type[NVMLError]] = {}  # noqa: RUF012 (filled once at import)
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._class_by_code.get(value, cls)
        error = Exception.__new__(cls)
        error.value = value
        return error

    def __init__(self, value: int) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        if self.value in _MESSAGES:
            return _MESSAGES[self.value]
        name = _CODE_NAMES.get(self.value)
        if name is None:
            return f"NVML Error with code {self.value}"
        return string.capwords(name.removeprefix("NVML_ERROR_").replace("_", " "))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NVMLError) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _error_class_name(constant: str) -> str:
    # pynvml's rule: NVML_ERROR_GPU_IS_LOST -> NVMLError_GpuIsLost.
    words = constant.removeprefix("NVML_ERROR_")
    return "NVMLError_" + string.capwords(words, "_").replace("_", "")


def _make_error_class(code: int, class_name: str) -> type[NVMLError]:
    def __new__(cls: type[NVMLError], *args: object) -> NVMLError:
        error = Exception.__new__(cls)
        error.value = code
        return error

    def __init__(self: NVMLError, *args: object) -> None:
        Exception.__init__(self, code)

    namespace = {"__new__": __new__, "__init__": __init__, "__module__": __name__}
    return type(class_name, (NVMLError,), namespace)


_ERROR_CLASSES: Final[dict[str, type[NVMLError]]] = {}
for _constant, _code in NVML_ERROR_CODES.items():
    _class = _make_error_class(_code, _error_class_name(_constant))
    _ERROR_CLASSES[_class.__name__] = _class
    NVMLError._class_by_code[_code] = _class


@dataclass(frozen=True)
class FakeMigDevice:
    """One MIG device of a ``FakeGpu``."""

    uuid: str
    name: str
    memory_total: int | None = None
    gpu_instance_id: int = 0
    compute_instance_id: int = 0


@dataclass(frozen=True)
class FakeGpu:
    """One physical GPU as the fake NVML reports it.

    ``memory_total=None`` makes the memory query raise NOT_SUPPORTED (as on GB10);
    ``mig_mode=None`` makes the MIG query raise NOT_SUPPORTED (pre-Ampere GPUs).
    """

    name: str
    uuid: str
    capability: tuple[int, int]
    memory_total: int | None = None
    pci_bus_id: str = "00000000:00:00.0"
    mig_mode: tuple[int, int] | None = (0, 0)
    mig_devices: tuple[FakeMigDevice, ...] = ()
    architecture: int = 0xFFFFFFFF


@dataclass(frozen=True)
class _Handle:
    gpu: int
    mig: int | None = None


@dataclass
class _Failure:
    code: int | None
    exception: BaseException | None
    index: int | None


@dataclass
class FakeNvml:
    """A stand-in for the ``pynvml`` module; pass it as ``nvml=`` to ``probe``/``detect``.

    ``fail_on_init`` makes ``nvmlInit`` raise that NVML code; ``return_bytes`` makes
    string queries return ``bytes``, like pynvml 11.0-11.4.
    """

    gpus: Sequence[FakeGpu] = ()
    driver_version: str = "580.159.04"
    cuda_driver_version: int = 13000
    nvml_version: str = "13.580.159.04"
    return_bytes: bool = False
    fail_on_init: int | None = None
    init_calls: int = field(default=0, init=False)
    """How often ``nvmlInit`` was called (failed calls included)."""
    shutdown_calls: int = field(default=0, init=False)
    """How often ``nvmlShutdown`` was called."""
    calls: list[str] = field(default_factory=list, init=False, repr=False)
    """Every NVML function called, in order."""
    _refcount: int = field(default=0, init=False, repr=False)
    _failures: dict[str, list[_Failure]] = field(default_factory=dict, init=False, repr=False)

    NVMLError: ClassVar[type[NVMLError]] = NVMLError
    NVML_SUCCESS: ClassVar[int] = 0
    NVML_DEVICE_MIG_DISABLE: ClassVar[int] = 0
    NVML_DEVICE_MIG_ENABLE: ClassVar[int] = 1

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_dump(
        cls, dump: str | os.PathLike[str] | Mapping[str, Any], **options: Any
    ) -> FakeNvml:
        """Build from a recorded dump (the format of ``tools/record_nvml.py``).

        A query recorded as failed (``{"nvml_error": 3}``) fails the same way here.
        """
        data: Mapping[str, Any]
        if isinstance(dump, Mapping):
            data = dump
        else:
            data = json.loads(Path(dump).read_text(encoding="utf-8"))
        gpus = [_gpu_from_dump(entry) for entry in data.get("devices", [])]
        fake = cls(
            gpus=gpus,
            driver_version=str(data.get("driver", "580.159.04")),
            cuda_driver_version=int(data.get("cuda_driver_v2", data.get("cuda_driver", 13000))),
            nvml_version=str(data.get("nvml_version", "13.580.159.04")),
            **options,
        )
        for index, entry in enumerate(data.get("devices", [])):
            for key, value in entry.items():
                if isinstance(value, Mapping) and "nvml_error" in value:
                    function = _DUMP_FUNCTIONS.get(key, key)
                    fake.fail(function, code=int(value["nvml_error"]), index=index)
        return fake

    @classmethod
    def from_profile(cls, name: str, count: int | None = None, **options: Any) -> FakeNvml:
        """``count`` GPUs of a built-in profile, with synthetic but stable UUIDs and bus ids."""
        entry, written = lookup(name)
        chosen = count if count is not None else written if written is not None else 1
        return cls(gpus=[fake_gpu(entry.key, index) for index in range(chosen)], **options)

    # -- failure injection ----------------------------------------------------------

    def fail(
        self,
        function: str,
        code: int | None = None,
        *,
        index: int | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """Make every later call of ``function`` raise ``NVMLError(code)`` (or ``exception``).

        ``index`` limits it to one GPU: the NVML index a handle belongs to (or the
        argument of ``nvmlDeviceGetHandleByIndex``).
        """
        if (code is None) == (exception is None):
            raise ValueError("give exactly one of code= and exception=")
        if function != "nvmlInit" and not callable(getattr(self, function, None)):
            raise ValueError(f"FakeNvml has no NVML function {function!r}")
        self._failures.setdefault(function, []).append(_Failure(code, exception, index))

    @property
    def initialized(self) -> bool:
        """NVML is initialised right now (more inits than shutdowns)."""
        return self._refcount > 0

    def __getattr__(self, name: str) -> Any:
        if name in _ERROR_CLASSES:
            return _ERROR_CLASSES[name]
        if name in NVML_ERROR_CODES:
            return NVML_ERROR_CODES[name]
        raise AttributeError(f"FakeNvml has no attribute {name!r}")

    # -- lifecycle ------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._enter("nvmlInit", None, need_init=False)
        self.init_calls += 1
        if self.fail_on_init is not None:
            raise NVMLError(self.fail_on_init)
        self._refcount += 1

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.nvmlInit()

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown", None)
        self.shutdown_calls += 1
        self._refcount -= 1

    # -- system queries -------------------------------------------------------------

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion", None)
        return self._text(self.driver_version)

    def nvmlSystemGetNVMLVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetNVMLVersion", None)
        return self._text(self.nvml_version)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion", None)
        return self.cuda_driver_version

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion_v2", None)
        return self.cuda_driver_version

    # -- handles --------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount", None)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex", index)
        if not 0 <= index < len(self.gpus):
            raise NVMLError(2)
        return _Handle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._enter("nvmlDeviceGetHandleByUUID", None)
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index, gpu in enumerate(self.gpus):
            if text in (gpu.uuid, gpu.uuid.removeprefix("GPU-")):
                return _Handle(index)
            for mig_index, mig in enumerate(gpu.mig_devices):
                if text == mig.uuid:
                    return _Handle(index, mig_index)
        raise NVMLError(6)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, index: int) -> _Handle:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if gpu.mig_mode is None:
            raise NVMLError(3)
        if handle.mig is not None or not 0 <= index < len(gpu.mig_devices):
            raise NVMLError(6)
        return _Handle(handle.gpu, index)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._gpu(handle, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if handle.mig is None:
            raise NVMLError(2)
        return _Handle(handle.gpu)

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> ctypes.c_uint:
        self._gpu(handle, "nvmlDeviceIsMigDeviceHandle")
        # The real binding returns the ctypes object, not an int.
        return ctypes.c_uint(1 if handle.mig is not None else 0)

    # -- device queries -------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: _Handle) -> str | bytes:
        gpu = self._gpu(handle, "nvmlDeviceGetName")
        mig = self._mig(handle)
        return self._text(gpu.name if mig is None else mig.name)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str | bytes:
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        mig = self._mig(handle)
        return self._text(gpu.uuid if mig is None else mig.uuid)

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceGetIndex")
        # Like NVML: on a MIG handle this is the MIG index within the parent.
        return handle.gpu if handle.mig is None else handle.mig

    def nvmlDeviceGetCudaComputeCapability(self, handle: _Handle) -> tuple[int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetCudaComputeCapability")
        return (gpu.capability[0], gpu.capability[1])

    def nvmlDeviceGetArchitecture(self, handle: _Handle) -> int:
        return self._gpu(handle, "nvmlDeviceGetArchitecture").architecture

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: object = None) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        mig = self._mig(handle)
        total = gpu.memory_total if mig is None else mig.memory_total
        if total is None:
            raise NVMLError(3)
        return SimpleNamespace(total=total, free=total, used=0, reserved=0)

    def nvmlDeviceGetPciInfo(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        legacy = gpu.pci_bus_id[4:] if len(gpu.pci_bus_id) == 16 else gpu.pci_bus_id
        return SimpleNamespace(busId=self._text(gpu.pci_bus_id), busIdLegacy=self._text(legacy))

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        if gpu.mig_mode is None:
            raise NVMLError(3)
        return list(gpu.mig_mode)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount")
        if gpu.mig_mode is None:
            raise NVMLError(3)
        # Like NVML: the number of slots, some of which may be empty.
        return max(7, len(gpu.mig_devices)) if gpu.mig_mode[0] else 0

    def nvmlDeviceGetGpuInstanceId(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceGetGpuInstanceId")
        mig = self._mig(handle)
        if mig is None:
            raise NVMLError(2)
        return mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: _Handle) -> int:
        self._gpu(handle, "nvmlDeviceGetComputeInstanceId")
        mig = self._mig(handle)
        if mig is None:
            raise NVMLError(2)
        return mig.compute_instance_id

    # -- plumbing -------------------------------------------------------------------

    def _enter(self, function: str, index: int | None, *, need_init: bool = True) -> None:
        self.calls.append(function)
        if need_init and self._refcount <= 0:
            raise NVMLError(1)
        for failure in self._failures.get(function, ()):
            if failure.index is None or failure.index == index:
                if failure.exception is not None:
                    raise failure.exception
                assert failure.code is not None
                raise NVMLError(failure.code)

    def _gpu(self, handle: _Handle, function: str) -> FakeGpu:
        self._enter(function, handle.gpu)
        if not isinstance(handle, _Handle) or not 0 <= handle.gpu < len(self.gpus):
            raise NVMLError(2)
        return self.gpus[handle.gpu]

    def _mig(self, handle: _Handle) -> FakeMigDevice | None:
        if handle.mig is None:
            return None
        return self.gpus[handle.gpu].mig_devices[handle.mig]

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.return_bytes else value


_DUMP_FUNCTIONS: Final[Mapping[str, str]] = {
    "memory_total": "nvmlDeviceGetMemoryInfo",
    "pci_busId": "nvmlDeviceGetPciInfo",
}


def _gpu_from_dump(entry: Mapping[str, Any]) -> FakeGpu:
    def recorded(key: str) -> Any:
        value = entry.get(key)
        return None if isinstance(value, Mapping) else value

    capability = recorded("nvmlDeviceGetCudaComputeCapability") or (0, 0)
    mig_mode = recorded("nvmlDeviceGetMigMode")
    return FakeGpu(
        name=str(recorded("nvmlDeviceGetName") or ""),
        uuid=str(recorded("nvmlDeviceGetUUID") or ""),
        capability=(int(capability[0]), int(capability[1])),
        memory_total=recorded("memory_total"),
        pci_bus_id=str(recorded("pci_busId") or "00000000:00:00.0"),
        mig_mode=None if mig_mode is None else (int(mig_mode[0]), int(mig_mode[1])),
        mig_devices=tuple(_mig_from_dump(mig) for mig in entry.get("mig_devices", ())),
        architecture=int(recorded("nvmlDeviceGetArchitecture") or 0xFFFFFFFF),
    )


def _mig_from_dump(entry: Mapping[str, Any]) -> FakeMigDevice:
    def recorded(key: str, default: Any) -> Any:
        value = entry.get(key, default)
        return default if isinstance(value, Mapping) else value

    return FakeMigDevice(
        uuid=str(recorded("uuid", "")),
        name=str(recorded("name", "")),
        memory_total=recorded("memory_total", None),
        gpu_instance_id=int(recorded("gpu_instance_id", 0)),
        compute_instance_id=int(recorded("compute_instance_id", 0)),
    )


_FAKE_NAMESPACE: Final = uuid_module.uuid5(uuid_module.NAMESPACE_URL, "detargs.testing.fake_gpu")


# NVML_DEVICE_ARCH_* values (nvidia-ml-py 13.x).
_NVML_ARCH: Final[Mapping[Arch, int]] = {
    Arch.VOLTA: 5,
    Arch.TURING: 6,
    Arch.AMPERE: 7,
    Arch.ADA: 8,
    Arch.HOPPER: 9,
    Arch.BLACKWELL: 10,
}


def fake_gpu(profile_name: str, nvml_index: int = 0, **changes: Any) -> FakeGpu:
    """A ``FakeGpu`` for a built-in profile; UUID and PCI bus id are synthetic but stable.

    The UUID is a name-based UUID of ``(profile, index)``, so two fakes of the same GPU
    at different indices differ, as on a real machine.
    """
    entry, _ = lookup(profile_name)
    synthetic = uuid_module.uuid5(_FAKE_NAMESPACE, f"{entry.key}/{nvml_index}")
    spec = FakeGpu(
        name=entry.name,
        uuid=f"GPU-{synthetic}",
        capability=(entry.capability.major, entry.capability.minor),
        memory_total=entry.memory_total_bytes,
        pci_bus_id=f"00000000:{0x18 + 0x10 * nvml_index:02X}:00.0",
        mig_mode=None if entry.capability < ComputeCapability(8, 0) else (0, 0),
        architecture=_NVML_ARCH.get(entry.arch, 0xFFFFFFFF),
    )
    return FakeGpu(**{**spec.__dict__, **changes})


def fake_device(name: str = "h100", count: int | None = None) -> DeviceInfo:
    """A ``DeviceInfo`` (source ``"fake"``) of ``count`` GPUs of a built-in profile.

    UUIDs are synthetic (``GPU-<uuid5>``), NVML indices equal CUDA ordinals.

    >>> fake_device("b200", count=2).launch_gpu().capability.sm
    'sm100'
    """
    entry, written = lookup(name)
    chosen = count if count is not None else written if written is not None else 1
    gpus = []
    for index in range(chosen):
        spec = fake_gpu(entry.key, index)
        gpus.append(
            GpuInfo(
                index=index,
                nvml_index=index,
                name=spec.name,
                uuid=spec.uuid,
                capability=ComputeCapability(*spec.capability),
                arch=entry.arch,
                memory_total_bytes=spec.memory_total,
                mig=None if spec.mig_mode is None else MigInfo(enabled=False),
                pci_bus_id=spec.pci_bus_id,
            )
        )
    return DeviceInfo(
        gpus=tuple(gpus), driver_version="580.159.04", cuda_driver_version="13.0", source="fake"
    )
