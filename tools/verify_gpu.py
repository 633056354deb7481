"""Check detargs' NVML detection against nvidia-smi and the CUDA driver on a real GPU node.

Run on a machine with NVIDIA GPUs (torch installed for the driver comparison):

    python tools/verify_gpu.py [--out DIR]

It prints, and saves under DIR when given:

1. ``nvidia-smi`` facts next to ``detargs detect --json`` (name, UUID, capability, memory);
2. for a set of CUDA_VISIBLE_DEVICES (and CUDA_DEVICE_ORDER) values, the GPUs detargs
   reports and the ones the CUDA driver gives (``cuInit``, then each ordinal's PCI bus id
   through ctypes), in CUDA order, and the count ``torch.cuda.device_count()`` gives (torch
   reads NVML with its own emulation of the driver's rules first), each in a fresh
   process so nothing is cached between them; on two or more GPUs, order cases too;
3. whether detection imported torch (it must not).

Every child process gets its own environment; this script never changes ``os.environ``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

_TORCH_COUNT = "import torch; print(torch.cuda.device_count())"
# The driver itself, with no library's emulation in between: cuInit, then each visible
# device's PCI bus id in CUDA order (or the cuInit status when it fails).
_DRIVER_BUSES = "\n".join(
    [
        "import ctypes",
        "cuda = ctypes.CDLL('libcuda.so.1')",
        "status = cuda.cuInit(0)",
        "count, device, buses = ctypes.c_int(0), ctypes.c_int(0), []",
        "if not status:",
        "    cuda.cuDeviceGetCount(ctypes.byref(count))",
        "    for ordinal in range(count.value):",
        "        cuda.cuDeviceGet(ctypes.byref(device), ordinal)",
        "        text = ctypes.create_string_buffer(64)",
        "        cuda.cuDeviceGetPCIBusId(text, 64, device)",
        "        buses.append(text.value.decode())",
        "print(f'cuInit {status}' if status else ','.join(buses))",
    ]
)
_NO_TORCH = (
    "import sys; from detargs import detect; info = detect(); "
    "print(len(info.gpus), 'torch' in sys.modules, 'pynvml' in sys.modules)"
)


def _run(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _count(snippet: str, cvd: str | None, order: str | None = None) -> str:
    env = _env(CUDA_VISIBLE_DEVICES=cvd, CUDA_DEVICE_ORDER=order)
    code, out, _ = _run([sys.executable, "-c", snippet], env)
    if code != 0:
        return f"exit {code}"
    return out.splitlines()[-1] if out else ""


def _bus(text: str) -> str:
    """A PCI bus id without its domain, lower case: NVML and CUDA pad the domain apart."""
    return text.split(":", 1)[-1].lower()


def _buses(ids: list[str]) -> str:
    return ",".join(_bus(text) for text in ids) if ids else "none"


def _smi() -> list[dict[str, str]]:
    if shutil.which("nvidia-smi") is None:
        return []
    fields = "index,name,uuid,compute_cap,memory.total,pci.bus_id"
    code, out, _ = _run(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"], _env()
    )
    if code != 0:
        return []
    rows = []
    for line in out.splitlines():
        values = [part.strip() for part in line.split(",")]
        rows.append(dict(zip(fields.split(","), values, strict=True)))
    return rows


def _detect(cvd: str | None, order: str | None = None) -> tuple[int, Any, str]:
    code, out, err = _run(
        [sys.executable, "-m", "detargs.cli", "detect", "--json"],
        _env(CUDA_VISIBLE_DEVICES=cvd, CUDA_DEVICE_ORDER=order),
    )
    return code, json.loads(out) if code == 0 else None, err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args()
    report: dict[str, Any] = {}

    smi = _smi()
    code, detected, err = _detect(None)
    report["nvidia_smi"] = smi
    report["detect"] = detected if code == 0 else {"exit": code, "stderr": err}
    print("== nvidia-smi vs detargs detect --json")
    gpus = detected["gpus"] if detected else []
    for row, gpu in zip(smi, gpus, strict=False):
        capability = ".".join(str(part) for part in gpu["capability"])
        memory_mib = (gpu["memory_total_bytes"] or 0) // 2**20
        checks = {
            "name": (row["name"], gpu["name"]),
            "uuid": (row["uuid"], gpu["uuid"]),
            "capability": (row["compute_cap"], capability),
            "memory MiB": (row["memory.total"], str(memory_mib)),
        }
        for what, (smi_value, ours) in checks.items():
            verdict = "match" if smi_value == ours else "DIFFERS"
            print(
                f"  gpu {row['index']} {what:<11} nvidia-smi={smi_value!r:<46} "
                f"detargs={ours!r} {verdict}"
            )
    if len(smi) != len(gpus):
        print(f"  count: nvidia-smi {len(smi)}, detargs {len(gpus)} DIFFERS")

    uuid = smi[0]["uuid"] if smi else "GPU-00000000"
    cases: list[tuple[str, str | None, str | None]] = [
        ("unset", None, None),
        ("empty", "", None),
        ("-1", "-1", None),
        ("0", "0", None),
        ("0,0", "0,0", None),
        ("uuid prefix", uuid[:12], None),
        ("full uuid", uuid, None),
        ("uuid without GPU-", uuid[4:], None),
        ("0,-1", "0,-1", None),
        ("-1,0", "-1,0", None),
        ("1", "1", None),
        ("1,0", "1,0", None),
        (" 0", " 0", None),
        ("0abc", "0abc", None),
        ("GPU-", "GPU-", None),
        ("MIG-x", "MIG-x", None),
        ("uuid,0", f"{uuid},0", None),
    ]
    if len(smi) >= 2:
        second = smi[1]["uuid"]
        last = str(len(smi) - 1)
        cases += [
            ("0,1", "0,1", None),
            (f"{last},0", f"{last},0", None),
            ("1,1", "1,1", None),
            ("second uuid prefix", second[:12], None),
            ("uuid2,uuid1", f"{second},{uuid}", None),
            ("0,out of range,1", f"0,{len(smi)},1", None),
            ("unset, PCI_BUS_ID", None, "PCI_BUS_ID"),
            (f"{last},0 PCI_BUS_ID", f"{last},0", "PCI_BUS_ID"),
        ]
    print(
        "\n== CUDA_VISIBLE_DEVICES: detargs vs the CUDA driver (cuInit), by PCI bus id in CUDA"
        " order; torch's device count beside"
    )
    print(f"  {'case':<22} {'value':<26} {'detargs':<24} {'driver':<24} {'torch':<6} verdict")
    rows = []
    for label, value, order in cases:
        code, info, err = _detect(value, order)
        ours = _buses([gpu["pci_bus_id"] for gpu in info["gpus"]]) if code == 0 else f"exit {code}"
        raw = _count(_DRIVER_BUSES, value, order)
        driver = _buses(raw.split(",")) if raw and not raw.startswith(("cuInit", "exit")) else raw
        torch = _count(_TORCH_COUNT, value, order)
        # cuInit 100 is "no device"; 101 (a repeated device) is what detargs exits 3 for
        agrees = ours == driver or (driver, ours) in {
            ("cuInit 100", "none"),
            ("cuInit 101", "exit 3"),
        }
        verdict = "agrees" if agrees else "DIFFERS"
        shown = "unset" if value is None else repr(value if len(value) < 24 else value[:21] + "...")
        print(f"  {label:<22} {shown:<26} {ours:<24} {driver:<24} {torch:<6} {verdict}")
        if code != 0:
            print(f"      detargs: {err.splitlines()[-1] if err else ''}")
        rows.append(
            {
                "case": label,
                "value": value,
                "order": order,
                "detargs": ours,
                "driver": driver,
                "torch": torch,
                "agrees": agrees,
                "stderr": err,
            }
        )
    report["cuda_visible_devices"] = rows

    code, out, err = _run([sys.executable, "-c", _NO_TORCH], _env())
    print("\n== detection imports: gpus, torch imported, pynvml imported")
    print(f"  {out or err}")
    report["imports"] = out or err
    if options.out is not None:
        options.out.mkdir(parents=True, exist_ok=True)
        (options.out / "verify_gpu.json").write_text(json.dumps(report, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
