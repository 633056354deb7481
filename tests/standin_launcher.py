"""A stand-in for ``python -m sglang.launch_server``: records what it was started with.

Run as ``<python> standin_launcher.py OUT.json <launcher argv...>``. It writes
``{"argv": [...], "env": {...}}`` to ``OUT.json`` — the argv it received after the
output path, and the environment variables whose names start with one of
``RECORDED_PREFIXES`` — and exits 0. When ``OUT.json`` is an existing directory, the record
goes to ``<node>.json`` in it, ``<node>`` being SLURM's name for the node (``SLURMD_NODENAME``)
or else the process id: one file per node of a multi-node launch. Tests use it to check
what ``detargs launch`` and ``Resolution.popen_args()`` really hand to a launcher, without
SGLang or a GPU.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Final

RECORDED_PREFIXES: Final = ("NCCL_", "SGLANG_", "DETARGS_")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: standin_launcher.py OUT.json [launcher args...]", file=sys.stderr)
        return 64
    out, launcher_argv = Path(argv[0]), argv[1:]
    if out.is_dir():
        out = out / f"{os.environ.get('SLURMD_NODENAME') or os.getpid()}.json"
    env = {
        name: value
        for name, value in sorted(os.environ.items())
        if name.startswith(RECORDED_PREFIXES)
    }
    out.write_text(json.dumps({"argv": launcher_argv, "env": env}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
