"""How much detargs costs: cold ``detargs resolve``, in-process ``resolve()``, ``import detargs``.

Run from a checkout (``src`` is put on the children's ``PYTHONPATH`` when detargs is
not installed) or from an environment where detargs is installed::

    python benchmarks/bench.py                 # full run: 11 repetitions per row
    python benchmarks/bench.py --smoke         # 3 repetitions, a few seconds (CI)
    python benchmarks/bench.py --json out.json # also save every sample

Cold rows time a fresh interpreter from the parent (``subprocess.run`` of
``sys.executable``, never a shell), so process start is in every row alike; rows run
interleaved (one repetition of every row, then the next), after one discarded warm-up
each, and the table shows medians. Children get the parent's environment minus
``DETARGS_DEVICE`` and ``PYTHONDONTWRITEBYTECODE`` (so every row runs from cached
bytecode, as an installed package does). On a machine without an NVIDIA driver the
NVML and torch rows are skipped, saying why, and ``detargs resolve`` runs with
``--device h100`` only. Nothing here asserts a timing: figures are for reading.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
RESOLVE_ARGS: Final = ("resolve", "--", "--enable-deterministic-inference")
_WORKER_FLAG: Final = "--in-process-worker"
_HEAVY: Final = ("pydantic", "packaging", "pynvml", "torch", "detargs.nvml", "detargs.sglang.argv")

# What a user runs; a cold process each.
_PYNVML_CAPABILITY: Final = (
    "import pynvml; pynvml.nvmlInit(); "
    "h = pynvml.nvmlDeviceGetHandleByIndex(0); "
    "pynvml.nvmlDeviceGetCudaComputeCapability(h); pynvml.nvmlShutdown()"
)
_TORCH_CAPABILITY: Final = "import torch; torch.cuda.get_device_capability()"
_GPU_FACTS: Final = (
    "import json, pynvml; pynvml.nvmlInit(); n = pynvml.nvmlDeviceGetCount(); "
    "h = pynvml.nvmlDeviceGetHandleByIndex(0); name = pynvml.nvmlDeviceGetName(h); "
    "cc = pynvml.nvmlDeviceGetCudaComputeCapability(h); "
    "drv = pynvml.nvmlSystemGetDriverVersion(); pynvml.nvmlShutdown(); "
    "text = lambda v: v.decode() if isinstance(v, bytes) else str(v); "
    "print(json.dumps({'name': text(name), 'count': n, 'capability': list(cc), "
    "'driver': text(drv)}))"
)


@dataclass
class Row:
    """One measured row: ``samples`` in seconds, or ``skipped`` with the reason."""

    key: str
    label: str
    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_samples) if self.cpu_samples else None


@dataclass
class Machine:
    gpu: str | None
    """``"NVIDIA H100 80GB HBM3 x8 (sm90, driver 570.x)"``; ``None`` without a driver."""
    no_gpu_reason: str | None
    torch: bool
    facts: dict[str, Any] = field(default_factory=dict)


# --- the environment --------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The parent's environment, made to import the same detargs, from cached bytecode."""
    env = dict(os.environ)
    env.pop("DETARGS_DEVICE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    spec = importlib.util.find_spec("detargs")
    if spec is None or spec.origin is None:
        home = str(REPO / "src")
    else:
        home = str(Path(spec.origin).resolve().parent.parent)
    paths = env.get("PYTHONPATH", "").split(os.pathsep) if env.get("PYTHONPATH") else []
    if home not in paths:
        env["PYTHONPATH"] = os.pathsep.join([home, *paths])
    return env


def run_child(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], env=dict(env), capture_output=True, text=True, check=False
    )


def _children_cpu() -> float:
    """User + system CPU seconds of all waited-for children (0 where unsupported)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_child(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one child: CPU time is steadier on a loaded machine."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = run_child(argv, env)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()[-2000:]}"
        )
    return elapsed, cpu


def probe_machine(env: Mapping[str, str]) -> Machine:
    has_torch = importlib.util.find_spec("torch") is not None
    if importlib.util.find_spec("pynvml") is None:
        return Machine(None, "no NVIDIA driver (pynvml is not installed)", has_torch)
    done = run_child(["-c", _GPU_FACTS], env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["nvmlInit failed"])[-1]
        return Machine(None, f"no NVIDIA driver ({last})", has_torch)
    facts: dict[str, Any] = json.loads(done.stdout)
    if not facts["count"]:
        return Machine(None, "no NVIDIA driver (NVML lists no GPU)", has_torch, facts)
    major, minor = facts["capability"]
    gpu = f"{facts['name']} x{facts['count']} (sm{major}{minor}, driver {facts['driver']})"
    return Machine(gpu, None, has_torch, facts)


def detargs_version(env: Mapping[str, str]) -> str:
    done = run_child(["-c", "import detargs; print(detargs.__version__)"], env)
    version = done.stdout.strip() or "?"
    # DETARGS_BENCH_COMMIT names the commit where the tree was copied without its .git
    commit = os.environ.get("DETARGS_BENCH_COMMIT", "")
    try:
        commit = (
            commit
            or subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        )
    except OSError:
        commit = ""
    return f"{version} ({commit})" if commit else version


def distribution_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


# --- cold processes ---------------------------------------------------------------


def cold_rows(machine: Machine) -> list[tuple[Row, list[str] | None]]:
    """Every cold row with its argv, or with ``None`` and the reason it is skipped."""
    cli = ["-m", "detargs.cli"]
    rows: list[tuple[Row, list[str] | None]] = [
        (Row("pass", "python -c pass"), ["-c", "pass"]),
        (Row("import_pydantic", "python -c 'import pydantic'"), ["-c", "import pydantic"]),
        (
            Row("import_basemodel", "python -c 'from pydantic import BaseModel'"),
            ["-c", "from pydantic import BaseModel"],
        ),
        (Row("import_detargs", "python -c 'import detargs'"), ["-c", "import detargs"]),
        (
            Row("resolve_h100", "detargs resolve --device h100 (cold)"),
            [*cli, "resolve", "--device", "h100", *RESOLVE_ARGS[1:]],
        ),
        (
            Row("detect_h100", "detargs detect --device h100 (cold)"),
            [*cli, "detect", "--device", "h100"],
        ),
    ]
    nvml_rows = [
        (Row("resolve_nvml", "detargs resolve, NVML auto-detect (cold)"), [*cli, *RESOLVE_ARGS]),
        (
            Row("pynvml_capability", "python: import pynvml, read capability"),
            ["-c", _PYNVML_CAPABILITY],
        ),
    ]
    for row, argv in nvml_rows:
        if machine.gpu is None:
            row.skipped = f"skipped: {machine.no_gpu_reason}"
            rows.append((row, None))
        else:
            rows.append((row, argv))
    torch_row = Row("torch_capability", "python: import torch, get_device_capability()")
    if not machine.torch:
        torch_row.skipped = "skipped: torch not installed"
        rows.append((torch_row, None))
    elif machine.gpu is None:
        torch_row.skipped = f"skipped: {machine.no_gpu_reason}"
        rows.append((torch_row, None))
    else:
        rows.append((torch_row, ["-c", _TORCH_CAPABILITY]))
    return rows


def measure_cold(
    rows: list[tuple[Row, list[str] | None]],
    repeat: int,
    env: Mapping[str, str],
    progress: Callable[[str], None],
) -> None:
    live = [(row, argv) for row, argv in rows if argv is not None]
    for row, argv in live:  # warm-up: writes bytecode caches, fills the page cache
        progress(f"warm-up: {row.label}")
        timed_child(argv, env)
    for index in range(repeat):
        progress(f"repetition {index + 1}/{repeat}")
        for row, argv in live:
            wall, cpu = timed_child(argv, env)
            row.samples.append(wall)
            row.cpu_samples.append(cpu)


# --- in process ---------------------------------------------------------------------


def in_process_worker(iterations: int) -> dict[str, Any]:
    """Runs in a fresh child: first and warm ``resolve()`` timings, in seconds."""
    clock = time.perf_counter
    start = clock()
    from detargs import ServerArgs, detect, resolve, target_version

    imported = clock()
    args = ServerArgs(model_path="m", enable_deterministic_inference=True)
    first = resolve(args, device="h100", sglang_version="0.5.23", environ={})
    first_done = clock()
    leaked = [name for name in ("pynvml", "torch") if name in sys.modules]
    device = detect("h100")
    target = target_version("0.5.23")
    cases: dict[str, Callable[[], object]] = {
        "resolve_given": lambda: resolve(args, device=device, sglang_version=target),
        "resolve_profile": lambda: resolve(args, device="h100", sglang_version="0.5.23"),
        "resolve_defaults": lambda: resolve(args, device="h100"),
    }
    warm: dict[str, list[float]] = {}
    for name, call in cases.items():
        for _ in range(max(10, iterations // 10)):
            call()
        samples = []
        for _ in range(iterations):
            begin = clock()
            call()
            samples.append(clock() - begin)
        warm[name] = samples
    return {
        "import_resolve": imported - start,
        "first_resolve": first_done - imported,
        "first_argv": list(first.argv),
        "leaked_modules": leaked,
        "warm": warm,
    }


def measure_in_process(iterations: int, env: Mapping[str, str]) -> dict[str, Any]:
    done = run_child([str(Path(__file__).resolve()), _WORKER_FLAG, str(iterations)], env)
    if done.returncode != 0:
        raise RuntimeError(f"in-process worker failed:\n{done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def modules_after(statement: str, env: Mapping[str, str]) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    done = run_child(["-c", code], env)
    if done.returncode != 0:
        raise RuntimeError(f"{statement}: {done.stderr.strip()[-2000:]}")
    return done.stdout.split()


# --- the report ---------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.0f} µs"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "-"
    return f"{numerator / denominator:.2f}×"


def report(
    header: Mapping[str, str],
    rows: Sequence[Row],
    in_process: Mapping[str, Any],
    imports: Mapping[str, list[str]],
    gpu: bool,
) -> str:
    by_key = {row.key: row for row in rows}

    def med(key: str) -> float | None:
        return by_key[key].median

    lines = ["detargs benchmark", ""]
    lines += [f"  {name:<11} {value}" for name, value in header.items()]
    lines += [
        "",
        "Cold processes (wall time of a fresh interpreter, median; CPU: the child's user+sys):",
        "",
    ]
    width = max(len(row.label) for row in rows)
    base = med("pass")
    lines.append(f"  {'':<{width}}  {'median':>10}  {'min':>10}  {'- pass':>10}  {'CPU':>10}  n")
    for row in rows:
        if row.skipped:
            lines.append(f"  {row.label:<{width}}  {row.skipped}")
            continue
        median = row.median
        extra = None if median is None or base is None else median - base
        lines.append(
            f"  {row.label:<{width}}  {_ms(median):>10}  {_ms(min(row.samples)):>10}  "
            f"{_ms(extra):>10}  {_ms(row.cpu_median):>10}  {len(row.samples)}"
        )
    resolve_key = "resolve_nvml" if gpu else "resolve_h100"
    lines += ["", "Ratios (same run; of wall-time medians, then of CPU medians):", ""]
    name = "NVML" if gpu else "h100"
    ratios = [
        (f"torch path / detargs resolve ({name})", "torch_capability", resolve_key, "≥ 20× (GPU)"),
        ("pynvml capability / detargs resolve (NVML)", "pynvml_capability", "resolve_nvml", ""),
        (f"detargs resolve ({name}) / python -c pass", resolve_key, "pass", ""),
        (
            "detargs resolve (h100) / from pydantic import BaseModel",
            "resolve_h100",
            "import_basemodel",
            "",
        ),
        ("import detargs / import pydantic", "import_detargs", "import_pydantic", "< 1×"),
        ("import detargs / python -c pass", "import_detargs", "pass", ""),
    ]
    lines.append(f"  {'':<58} {'wall':>9} {'CPU':>9}  target")
    for label, top, bottom, target in ratios:
        wall = _ratio(med(top), med(bottom))
        cpu = _ratio(by_key[top].cpu_median, by_key[bottom].cpu_median)
        lines.append(f"  {label:<58} {wall:>9} {cpu:>9}  {target}".rstrip())
    if gpu:
        verdict = med("resolve_nvml")
        met = "met" if verdict is not None and verdict <= 0.15 else "NOT met"
        lines.append(
            f"  {'detargs resolve (NVML), absolute':<58} {_ms(verdict):>9}  ≤ 150 ms (GPU): {met}"
        )
    warm = in_process["warm"]
    lines += ["", "In process (one fresh child; warm medians after warm-up):", ""]
    in_rows = [
        ("import detargs' resolution modules (first use)", _ms(in_process["import_resolve"])),
        ("first resolve(device='h100') in the process", _ms(in_process["first_resolve"])),
        (
            "resolve(args, DeviceInfo, TargetVersion), warm",
            _us(statistics.median(warm["resolve_given"])) + "   target ≤ 200 µs",
        ),
        (
            "resolve(args, device='h100', sglang_version='0.5.23'), warm",
            _us(statistics.median(warm["resolve_profile"])),
        ),
        (
            "resolve(args, device='h100') (installed sglang looked up), warm",
            _us(statistics.median(warm["resolve_defaults"])),
        ),
    ]
    for label, value in in_rows:
        lines.append(f"  {label:<62} {value}")
    lines += ["", "Modules loaded (of " + ", ".join(_HEAVY) + "):", ""]
    for statement, names in imports.items():
        lines.append(f"  after {statement:<52} {', '.join(names) or 'none'}")
    leaked = in_process["leaked_modules"]
    first = "the first resolve(device='h100')"
    lines.append(f"  after {first:<52} {', '.join(leaked) or 'none'} (of pynvml, torch)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--smoke", action="store_true", help="3 repetitions and few in-process iterations (CI)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="cold repetitions per row (default 11; 3 with --smoke)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="in-process resolve() calls per case (default 2000; 200 with --smoke)",
    )
    parser.add_argument("--json", metavar="OUT", type=Path, help="save every sample as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(_WORKER_FLAG, type=int, metavar="N", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    worker: int | None = getattr(options, _WORKER_FLAG.strip("-").replace("-", "_"))
    if worker is not None:
        print(json.dumps(in_process_worker(worker)))
        return 0
    repeat = options.repeat or (3 if options.smoke else 11)
    iterations = options.iterations or (200 if options.smoke else 2000)

    def progress(text: str) -> None:
        if not options.quiet:
            print(f"bench: {text}", file=sys.stderr, flush=True)

    env = child_env()
    progress("probing the machine")
    machine = probe_machine(env)
    header = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": machine.gpu or f"none: {machine.no_gpu_reason} (CPU only)",
        "cpu": cpu_name(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "detargs": detargs_version(env),
        "pydantic": distribution_version("pydantic"),
        "torch": distribution_version("torch") if machine.torch else "not installed",
        "mode": f"{'smoke' if options.smoke else 'full'}: {repeat} cold repetitions per row, "
        f"{iterations} in-process calls per case",
    }
    rows = cold_rows(machine)
    measure_cold(rows, repeat, env, progress)
    progress("in-process resolve()")
    in_process = measure_in_process(iterations, env)
    imports = {
        statement: modules_after(statement, env)
        for statement in ("import detargs", "import detargs.cli")
    }
    plain = [row for row, _ in rows]
    print(report(header, plain, in_process, imports, gpu=machine.gpu is not None))
    if options.json is not None:
        payload = {
            "header": header,
            "machine": asdict(machine),
            "cold": {
                row.key: {
                    "label": row.label,
                    "median_s": row.median,
                    "samples_s": row.samples,
                    "cpu_median_s": row.cpu_median,
                    "cpu_samples_s": row.cpu_samples,
                    "skipped": row.skipped,
                }
                for row in plain
            },
            "in_process": in_process,
            "imports": imports,
        }
        options.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        progress(f"saved {options.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
