"""Check detargs' NVML detection against nvidia-smi and the CUDA driver on a real GPU node.

Run on a machine with NVIDIA GPUs (torch installed for the driver comparison):

    python tools/verify_gpu.py [--out DIR]

It prints, and saves under DIR when given:

1. ``nvidia-smi`` facts next to ``detargs detect --json`` (name, UUID, capability, memory);
2. for a set of CUDA_VISIBLE_DEVICES values, the count detargs reports, the count the
   CUDA driver gives (``cuInit`` + ``cuDeviceGetCount`` through ctypes) and the count
   ``torch.cuda.device_count()`` gives (torch reads NVML with its own emulation of the
   driver's rules first), each in a fresh process so nothing is cached between them;
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
# The driver itself, with no library's emulation in between: cuInit, then cuDeviceGetCount.
_DRIVER_COUNT = (
    "import ctypes; cuda = ctypes.CDLL('libcuda.so.1'); status = cuda.cuInit(0); "
    "count = ctypes.c_int(0); "
    "print(f'cuInit {status}' if status else (cuda.cuDeviceGetCount(ctypes.byref(count)) or "
    "count.value))"
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


def _count(snippet: str, cvd: str | None) -> str:
    code, out, _ = _run([sys.executable, "-c", snippet], _env(CUDA_VISIBLE_DEVICES=cvd))
    return out.splitlines()[-1] if code == 0 and out else f"exit {code}"


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


def _detect(cvd: str | None) -> tuple[int, Any, str]:
    code, out, err = _run(
        [sys.executable, "-m", "detargs.cli", "detect", "--json"], _env(CUDA_VISIBLE_DEVICES=cvd)
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
            print(f"  gpu {row['index']} {what:<11} nvidia-smi={smi_value!r:<46} "
                  f"detargs={ours!r} {verdict}")
    if len(smi) != len(gpus):
        print(f"  count: nvidia-smi {len(smi)}, detargs {len(gpus)} DIFFERS")

    uuid = smi[0]["uuid"] if smi else "GPU-00000000"
    cases: list[tuple[str, str | None]] = [
        ("unset", None), ("empty", ""), ("-1", "-1"), ("0", "0"), ("0,0", "0,0"),
        ("uuid prefix", uuid[:12]), ("full uuid", uuid), ("uuid without GPU-", uuid[4:]),
        ("0,-1", "0,-1"), ("-1,0", "-1,0"), ("1", "1"), ("1,0", "1,0"), (" 0", " 0"),
        ("0abc", "0abc"), ("GPU-", "GPU-"), ("MIG-x", "MIG-x"), ("uuid,0", f"{uuid},0"),
    ]  # fmt: skip
    print("\n== CUDA_VISIBLE_DEVICES: detargs vs the CUDA driver (cuInit) and torch")
    print(f"  {'case':<20} {'value':<30} {'detargs':<8} {'driver':<11} {'torch':<6} verdict")
    rows = []
    for label, value in cases:
        code, info, err = _detect(value)
        ours = str(len(info["gpus"])) if code == 0 else f"exit {code}"
        driver = _count(_DRIVER_COUNT, value)
        torch = _count(_TORCH_COUNT, value)
        # cuInit 100 is "no device"; 101 (a repeated device) is what detargs exits 3 for
        agrees = ours == driver or (driver, ours) in {("cuInit 100", "0"), ("cuInit 101", "exit 3")}
        verdict = "agrees" if agrees else "DIFFERS"
        shown = "unset" if value is None else repr(value)
        print(f"  {label:<20} {shown:<30} {ours:<8} {driver:<11} {torch:<6} {verdict}")
        if code != 0:
            print(f"      detargs: {err.splitlines()[-1] if err else ''}")
        rows.append({"case": label, "value": value, "detargs": ours, "driver": driver,
                     "torch": torch, "agrees": agrees, "stderr": err})  # fmt: skip
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
