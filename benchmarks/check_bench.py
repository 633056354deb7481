"""What ``detargs check`` costs as a client: requests/s and CPU per request, vs. a bare loop.

Both rows send exactly the same traffic (the same plan: the same bodies, in the same
concurrent bursts, the same cache flushes) to one stand-in server
(``detargs.check.standin``, deterministic, answering at once) in a child process, so
the client's CPU time is measured alone in this process:

- ``bare httpx``: an ``httpx.AsyncClient`` that posts each burst with ``asyncio.gather``
  and decodes the JSON, nothing else;
- ``detargs check``: the whole check: detection, adapters, parsing, bitwise comparison,
  the report.

Rows run interleaved (one repetition of each, then the next) after a discarded warm-up,
and the table shows medians and the ratios of the two rows from the same run. Nothing
here asserts a timing: figures are for reading. A single-GPU SGLang server serves short
(32-token) completions of a small model at a few hundred to a few thousand requests per
second; the stand-in answers faster than the client can ask, so the client is what is
measured::

    python benchmarks/check_bench.py            # 7 repetitions of the default check (337 requests)
    python benchmarks/check_bench.py --smoke    # 2 repetitions, a few seconds (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from detargs.check import CheckOptions, check
from detargs.check.probes import plan
from detargs.check.protocol import FLUSH_PATH, SGLangGenerate

REPO: Final = Path(__file__).resolve().parent.parent
_SERVER: Final = (
    "import sys\n"
    "from detargs.check.standin import StandinServer\n"
    "server = StandinServer('deterministic', gap_s=0.0).start()\n"
    "print(server.url, flush=True)\n"
    "sys.stdin.read()\n"
)


@dataclass
class Row:
    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median_wall(self) -> float:
        return statistics.median(self.wall)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


async def bare_loop(url: str, options: CheckOptions) -> int:
    """The check's traffic through plain httpx: returns the number of completions."""
    speaker = SGLangGenerate()
    plans = [plan(name, options) for name in options.probes]
    biggest = max(options.others) + 1
    limits = httpx.Limits(max_connections=biggest, max_keepalive_connections=biggest)
    sent = 0
    async with httpx.AsyncClient(
        base_url=url, limits=limits, verify=False, trust_env=False
    ) as client:
        (await client.get("/model_info")).json()
        for probe in plans:
            for round_ in probe.rounds:
                if round_.flush:
                    await client.post(FLUSH_PATH)
                bodies = [speaker.body(request) for request in round_.requests]
                answers = await asyncio.gather(*(client.post(speaker.path, json=b) for b in bodies))
                for answer in answers:
                    answer.json()
                sent += len(bodies)
    return sent


def timed(run: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="2 repetitions (CI)")
    parser.add_argument(
        "--repeat", type=int, default=None, help="repetitions per row (default 7; 2 with --smoke)"
    )
    options = parser.parse_args(argv)
    repeat = options.repeat or (2 if options.smoke else 7)
    settings = CheckOptions()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        requests = sum(plan(name, settings).requests for name in settings.probes)
        rows = {"bare": Row("bare httpx"), "check": Row("detargs check")}

        def run_bare() -> None:
            assert asyncio.run(bare_loop(url, settings)) == requests

        def run_check() -> None:
            report = check(url, settings)
            assert report.deterministic
            assert report.requests == requests

        runs = {"bare": run_bare, "check": run_check}
        for run in runs.values():  # warm-up: imports, connections, caches
            run()
        for _ in range(repeat):
            for key, run in runs.items():
                wall, cpu = timed(run)
                rows[key].wall.append(wall)
                rows[key].cpu.append(cpu)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)

    print(
        f"detargs check client cost: {requests} requests per run (the default check), "
        f"{repeat} repetitions, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"httpx {httpx.__version__}"
    )
    print(f"{'row':<16}{'requests/s':>12}{'wall ms/run':>13}{'client CPU us/req':>19}")
    for row in rows.values():
        rate = requests / row.median_wall()
        print(
            f"{row.label:<16}{rate:>12.0f}{row.median_wall() * 1e3:>13.1f}"
            f"{row.median_cpu() / requests * 1e6:>19.0f}"
        )
    bare, full = rows["bare"], rows["check"]
    extra_wall = (full.median_wall() - bare.median_wall()) / requests * 1e6
    extra_cpu = (full.median_cpu() - bare.median_cpu()) / requests * 1e6
    print(
        f"ratios (check / bare): requests/s {bare.median_wall() / full.median_wall():.2f}, "
        f"client CPU per request {full.median_cpu() / bare.median_cpu():.2f}; "
        f"overhead per request: {extra_wall:.0f} us wall, {extra_cpu:.0f} us CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
