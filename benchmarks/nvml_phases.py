"""Where a cold NVML probe spends its time, and how much of it overlaps Python work.

    python benchmarks/nvml_phases.py

Each measurement is a fresh interpreter (NVML and imports are per process). Prints
the median of each phase of ``import pynvml; nvmlInit(); queries; nvmlShutdown()``,
then a cold ``detargs`` import-and-parse with the probe run in the same thread after
it, and with the probe started in a thread first. Standard library and detargs only.
"""

from __future__ import annotations

import json
import statistics

from bench import child_env, run_child

_PHASES = r"""
import time, json
T = time.perf_counter
t0 = T()
import pynvml
t1 = T()
pynvml.nvmlInit()
t2 = T()
n = pynvml.nvmlDeviceGetCount()
for i in range(n):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    pynvml.nvmlDeviceGetName(h); pynvml.nvmlDeviceGetUUID(h)
    pynvml.nvmlDeviceGetCudaComputeCapability(h); pynvml.nvmlDeviceGetMemoryInfo(h)
    pynvml.nvmlDeviceGetPciInfo(h)
pynvml.nvmlSystemGetDriverVersion()
t3 = T()
pynvml.nvmlShutdown()
t4 = T()
print(json.dumps({"import pynvml": t1 - t0, "nvmlInit": t2 - t1, "queries": t3 - t2,
                  "nvmlShutdown": t4 - t3}))
"""
_DETARGS_WORK = (
    "import detargs.cli as cli, detargs.sglang._argv_read, detargs.resolution\n"
    "from detargs.sglang.version import target_version\n"
    "from detargs.sglang.catalogue import catalogue_for\n"
    "t = target_version(None); catalogue_for(t.release)\n"
    "detargs.sglang._argv_read.read_values(['--enable-deterministic-inference'], t)\n"
)
_SERIAL = (
    "import time, json\nT = time.perf_counter\nt0 = T()\n"
    + _DETARGS_WORK
    + "from detargs.nvml import probe\nprobe()\nprint(json.dumps({'serial': T() - t0}))\n"
)
_OVERLAP = (
    "import time, json, threading\nT = time.perf_counter\nt0 = T()\nbox = {}\n"
    "def run():\n    from detargs.nvml import probe\n    box['info'] = probe()\n"
    "worker = threading.Thread(target=run); worker.start()\n"
    + _DETARGS_WORK
    + "worker.join()\nprint(json.dumps({'overlapped': T() - t0}))\n"
)


def _run(code: str) -> dict[str, float]:
    done = run_child(["-c", code], child_env())
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-2000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    repetitions = 11
    samples: dict[str, list[float]] = {}
    _run(_PHASES), _run(_SERIAL), _run(_OVERLAP)  # warm the page cache and bytecode
    for _ in range(repetitions):
        for code in (_PHASES, _SERIAL, _OVERLAP):
            for key, value in _run(code).items():
                samples.setdefault(key, []).append(value)
    for key, values in samples.items():
        print(f"  {key:<16} {1000 * statistics.median(values):7.1f} ms  (n={len(values)})")


if __name__ == "__main__":
    main()
