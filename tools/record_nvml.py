"""Record what NVML reports on this machine, as a fixture for ``detargs.testing.FakeNvml``.

Run on a GPU node (needs only the standard library and nvidia-ml-py)::

    python tools/record_nvml.py                       # JSON to stdout
    python tools/record_nvml.py tests/fixtures/nvml/b200-real.json

The format is that of ``tests/fixtures/nvml/h200-real.json``: system facts at the top,
one object per GPU under ``devices`` keyed by the NVML function that produced each
value, plus ``mig_devices`` for GPUs in MIG mode. A query that fails is recorded as
``{"nvml_error": <code>, "name": "NVMLError_..."}`` so the fake fails the same way.
Serial numbers identify hardware and are left out unless ``--with-serial`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_DEVICE_QUERIES = (
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetArchitecture",
    "nvmlDeviceGetBrand",
    "nvmlDeviceGetSerial",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMinorNumber",
    "nvmlDeviceGetBoardPartNumber",
    "nvmlDeviceGetMultiGpuBoard",
    "nvmlDeviceGetNumGpuCores",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetComputeMode",
    "nvmlDeviceGetPersistenceMode",
)
_MIG_QUERIES = (
    ("uuid", "nvmlDeviceGetUUID"),
    ("name", "nvmlDeviceGetName"),
    ("gpu_instance_id", "nvmlDeviceGetGpuInstanceId"),
    ("compute_instance_id", "nvmlDeviceGetComputeInstanceId"),
)
_ENV = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES")


def main(argv: Sequence[str] | None = None, nvml: Any = None) -> int:
    """Record and write the dump; ``nvml`` replaces ``pynvml`` (e.g. a FakeNvml) in tests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", help="write here instead of stdout")
    parser.add_argument("--with-serial", action="store_true", help="keep GPU serial numbers")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pynvml = _import_pynvml() if nvml is None else nvml
    imported = time.perf_counter()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        print(f"record_nvml: nvmlInit failed: {error} (code {error.value})", file=sys.stderr)
        return 1
    initialised = time.perf_counter()
    try:
        dump = _record(pynvml, keep_serial=args.with_serial)
    finally:
        pynvml.nvmlShutdown()
    finished = time.perf_counter()
    dump = {
        "t_import_pynvml_s": imported - started,
        "t_nvmlInit_s": initialised - imported,
        **dump,
        "t_total_s": finished - started,
    }
    text = json.dumps(dump, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _import_pynvml() -> Any:
    with warnings.catch_warnings():
        # A deprecated `pynvml` distribution warns on import; the dump must not fail on it.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pynvml
    return pynvml


def _record(pynvml: Any, *, keep_serial: bool) -> dict[str, Any]:
    def attempt(function: Callable[..., Any], *args: Any) -> Any:
        try:
            return _plain(function(*args))
        except pynvml.NVMLError as error:
            return {"nvml_error": error.value, "name": type(error).__name__}

    queries_started = time.perf_counter()
    count = pynvml.nvmlDeviceGetCount()
    devices = []
    for index in range(count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        device: dict[str, Any] = {"index": index}
        for name in _DEVICE_QUERIES:
            function = getattr(pynvml, name, None)
            if function is None:
                device[name] = {"missing": "not in this nvidia-ml-py"}
                continue
            device[name] = attempt(function, handle)
        if not keep_serial and isinstance(device.get("nvmlDeviceGetSerial"), str):
            device["nvmlDeviceGetSerial"] = "redacted"
        memory = attempt(pynvml.nvmlDeviceGetMemoryInfo, handle)
        device["memory_total"] = memory if isinstance(memory, dict) else memory.total
        pci = attempt(pynvml.nvmlDeviceGetPciInfo, handle)
        device["pci_busId"] = pci if isinstance(pci, dict) else _plain(pci.busId)
        mig_mode = device.get("nvmlDeviceGetMigMode")
        if isinstance(mig_mode, list) and mig_mode and mig_mode[0] == 1:
            device["mig_devices"] = _record_migs(pynvml, handle, attempt)
        devices.append(device)
    queries_done = time.perf_counter()
    return {
        "driver": _plain(pynvml.nvmlSystemGetDriverVersion()),
        "cuda_driver": pynvml.nvmlSystemGetCudaDriverVersion(),
        "cuda_driver_v2": pynvml.nvmlSystemGetCudaDriverVersion_v2(),
        "nvml_version": _plain(pynvml.nvmlSystemGetNVMLVersion()),
        "count": count,
        "devices": devices,
        "t_queries_s": queries_done - queries_started,
        "arch_constants": _constants(pynvml, "NVML_DEVICE_ARCH_"),
        "brand_constants": _constants(pynvml, "NVML_BRAND_"),
        "error_classes": sorted(name for name in dir(pynvml) if name.startswith("NVMLError_")),
        "env": {name: os.environ.get(name) for name in _ENV},
    }


def _record_migs(pynvml: Any, parent: Any, attempt: Callable[..., Any]) -> list[dict[str, Any]]:
    migs = []
    for slot in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(parent)):
        try:
            handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
        except pynvml.NVMLError:
            continue  # an empty slot
        mig: dict[str, Any] = {"slot": slot}
        for key, name in _MIG_QUERIES:
            mig[key] = attempt(getattr(pynvml, name), handle)
        memory = attempt(pynvml.nvmlDeviceGetMemoryInfo, handle)
        mig["memory_total"] = memory if isinstance(memory, dict) else memory.total
        migs.append(mig)
    return migs


def _constants(pynvml: Any, prefix: str) -> dict[str, int]:
    return {name: getattr(pynvml, name) for name in sorted(dir(pynvml)) if name.startswith(prefix)}


def _plain(value: Any) -> Any:
    """JSON-ready: bytes from old bindings decoded, tuples as lists."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
