"""Multi-node plans against a single-node cold ``detargs resolve``, measured in one run.

    python benchmarks/plan_bench.py            # 7 repetitions, 1,000 node reports
    python benchmarks/plan_bench.py --smoke    # 2 repetitions, 50 node reports (CI)

Rows, each a fresh interpreter (cold, as a node or a job script runs it), interleaved so
that a change in machine load hits every row alike:

- ``resolve``: ``detargs resolve --device h100x8 -- --enable-deterministic-inference
  --tp-size 8``, the baseline;
- ``plan``: ``detargs plan --nnodes N`` from N saved ``detect --json`` reports (each with
  its own GPU UUIDs, as real nodes' reports have), written with ``-o``;
- ``launch``: one node's ``detargs launch --plan --dry-run`` under SLURM's variables
  (rank 7 of N, hostlist ``gpu-[0001-N]``), ``DETARGS_DEVICE`` standing in for NVML.

Prints medians and each row's ratio to ``resolve``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import child_env, timed_child

from detargs import detect

_ARGS = ("--model-path", "m", "--enable-deterministic-inference")


def _reports(directory: Path, count: int) -> list[str]:
    base = detect("h100x8")
    paths = []
    for node in range(count):
        gpus = tuple(
            dataclasses.replace(gpu, uuid=f"GPU-{node:04d}-{gpu.index}") for gpu in base.gpus
        )
        path = directory / f"node{node:04d}.json"
        path.write_text(
            dataclasses.replace(base, gpus=gpus, source="nvml").to_json(), encoding="utf-8"
        )
        paths.append(str(path))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="2 repetitions, 50 nodes (CI)")
    parser.add_argument("--nodes", type=int, default=None, help="default 1000 (50 with --smoke)")
    parser.add_argument("--repeat", type=int, default=None, help="default 7 (2 with --smoke)")
    options = parser.parse_args(argv)
    nodes = options.nodes or (50 if options.smoke else 1000)
    repeat = options.repeat or (2 if options.smoke else 7)
    with tempfile.TemporaryDirectory(prefix="plan-bench-") as temporary:
        directory = Path(temporary)
        reports = _reports(directory, nodes)
        site = directory / "site"
        (site / "sglang-0.5.23.dist-info").mkdir(parents=True)
        (site / "sglang-0.5.23.dist-info" / "METADATA").write_text(
            "Version: 0.5.23\n\n", encoding="utf-8"
        )
        plan = directory / "plan.json"
        env = child_env()
        node_env = {
            **env,
            "DETARGS_DEVICE": "h100x8",
            "SLURM_NODEID": "7",
            "SLURM_NNODES": str(nodes),
            "SLURM_JOB_NODELIST": f"gpu-[0001-{nodes:04d}]",
            "PYTHONPATH": os.pathsep.join([env.get("PYTHONPATH", ""), str(site)]),
        }
        rows = {
            "resolve": (
                [
                    "-m",
                    "detargs.cli",
                    "resolve",
                    "--device",
                    "h100x8",
                    "--sglang-version",
                    "0.5.23",
                    "--",
                    *_ARGS,
                    "--tp-size",
                    "8",
                ],
                env,
            ),
            "plan": (
                [
                    "-m",
                    "detargs.cli",
                    "plan",
                    "--sglang-version",
                    "0.5.23",
                    "--nnodes",
                    str(nodes),
                    *(word for path in reports for word in ("--node-report", path)),
                    "-o",
                    str(plan),
                    "--",
                    *_ARGS,
                    "--tp-size",
                    str(8 * nodes),
                ],
                env,
            ),
            "launch": (["-m", "detargs.cli", "launch", "--plan", str(plan), "--dry-run"], node_env),
        }
        timed_child(rows["plan"][0], env)  # warm-up; also writes the plan the launch row reads
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(repeat):
            for name, (words, row_env) in rows.items():
                times[name].append(timed_child(words, row_env)[0])
    base = statistics.median(times["resolve"])
    print(f"{nodes} nodes, {repeat} cold repetitions per row (median wall time)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<8} {median * 1000:8.1f} ms   {median / base:6.2f} x resolve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
