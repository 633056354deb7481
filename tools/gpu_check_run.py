"""Run ``detargs check`` against three real SGLang servers on one GPU (driven by gpu_check_run.sh).

On the GPU machine, from the checkout root, after ``tools/gpu_check_run.sh`` has unpacked
SGLang and built the model (see that script)::

    python3 tools/gpu_check_run.py --model /tmp/tiny --out "$OUT"

Three servers of SGLang 0.5.17 serve the same random-weight model, side by side:

- ``A``: ``detargs launch`` for the GPU it detects, with ``--attention-backend triton``
  (the slimmed kernels have no fa3) and the recipe's flags;
- ``B``: the same resolved with ``--cuda-graph-backend-prefill breakable --on-conflict
  override``; where detargs still replaces ``breakable``, the resolved command is run
  with ``breakable`` put back, so B is A with the prefill graph left breakable;
- ``C``: SGLang's defaults (no deterministic inference), with the recipe's flags.

They share the GPU: SGLang 0.5.17 sizes its KV pool after capturing CUDA graphs, from the
memory free at that moment minus ``(1 - mem_fraction_static)`` of what was free before
its model loaded, so a neighbour that allocates in between shrinks it. Each server
therefore caps its pool with ``--max-total-tokens`` (131072 tokens, about 1 GB of this
model's KV cache: its share is then never the limit) beside ``--mem-fraction-static
0.25``, and each starts once the previous one has loaded its weights. Each gets
``detargs check --json`` with long prompts (``--prompt-words 400``: bursts of up to 32
prompts of 50 to 800 words, beyond the 8192-token prefill chunk).
Written under ``--out`` (8 files, flat): ``check-{A,B,C}.json``, ``summary.txt`` (verdicts,
figures, exit codes, what ran), ``explain.txt`` (``detargs explain`` of A and B and the
commands run) and ``server-{A,B,C}.log`` (tails). Servers are stopped by process group.
Standard library only; detargs runs as a child (``python3 -m detargs.cli``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

SGLANG: Final = "0.5.17"
LAUNCHER: Final = "python3 -m sglang.launch_server"
RECIPE: Final = (
    "--attention-backend",
    "triton",
    "--skip-server-warmup",
    "--mem-fraction-static",
    "0.25",
    "--max-total-tokens",
    "131072",
)
LOADED: Final = re.compile(r"Load weight end")
LOG_TAIL: Final = 400_000  # bytes of each server log kept


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    note: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    healthy_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def detargs(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detargs.cli", *words], capture_output=True, text=True, check=False
    )


def resolved(flags: list[str], *, override: bool) -> tuple[list[str], dict[str, str], str]:
    """The command and env detargs resolves for ``flags``, and its explanation."""
    head = ["--sglang-version", SGLANG, "--launcher", LAUNCHER]
    if override:
        head += ["--on-conflict", "override"]
    done = detargs("resolve", "--format", "json", *head, "--", *flags)
    if done.returncode != 0:
        raise SystemExit(f"detargs resolve failed ({done.returncode}): {done.stderr.strip()}")
    data: dict[str, Any] = json.loads(done.stdout)
    explained = detargs("explain", *head, "--", *flags)
    text = f"$ detargs explain {shlex.join([*head, '--', *flags])}\n{explained.stdout}"
    text += explained.stderr
    return list(data["command"]), dict(data["env"]), text


def with_prefill_backend(command: list[str], value: str) -> tuple[list[str], str]:
    flag = "--cuda-graph-backend-prefill"
    if flag in command:
        at = command.index(flag)
        if command[at + 1] == value:
            return command, f"detargs kept {flag} {value}"
        old = command[at + 1]
        return [*command[: at + 1], value, *command[at + 2 :]], (
            f"detargs resolved {flag} {old}; run with {value} put back"
        )
    return [*command, flag, value], f"detargs emitted no {flag}; run with {value} appended"


def start(server: Server, out: Path) -> None:
    server.log_path = out / f"server-{server.name}.full.log"
    server.log = server.log_path.open("wb")
    env = {**os.environ, **server.env}
    server.process = subprocess.Popen(
        server.command, stdout=server.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def log_text(server: Server) -> str:
    try:
        return server.log_path.read_bytes()[-LOG_TAIL:].decode("utf-8", "replace")
    except OSError:
        return ""


def wait_for(server: Server, pattern: re.Pattern[str], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if pattern.search(log_text(server)):
            return True
        if server.process is not None and server.process.poll() is not None:
            return False
        time.sleep(1)
    return False


def healthy(server: Server) -> bool:
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="/tmp/tiny")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/out")))
    parser.add_argument("--budget", type=float, default=500, help="seconds for everything")
    parser.add_argument("--prompt-words", default="400")
    options = parser.parse_args()
    started = time.monotonic()
    deadline = started + options.budget
    out: Path = options.out
    out.mkdir(parents=True, exist_ok=True)

    def flags(port: int) -> list[str]:
        return ["--model-path", options.model, "--port", str(port), *RECIPE]

    deterministic = ["--enable-deterministic-inference"]
    a_flags = [*flags(30000), *deterministic]
    a_resolved, _, a_text = resolved(a_flags, override=False)
    # A is `detargs launch` itself: it detects the GPU and execs the launcher in this group
    a_command = [
        sys.executable,
        "-m",
        "detargs.cli",
        "launch",
        "--sglang-version",
        SGLANG,
        "--launcher",
        LAUNCHER,
        "--",
        *a_flags,
    ]
    b_flags = [*flags(31000), *deterministic, "--cuda-graph-backend-prefill", "breakable"]
    b_command, b_env, b_text = resolved(b_flags, override=True)
    b_command, b_note = with_prefill_backend(b_command, "breakable")
    c_command = [*shlex.split(LAUNCHER), *flags(32000)]
    servers = [
        Server("A", 30000, a_command, {}, f"detargs launch, which runs: {shlex.join(a_resolved)}"),
        Server("B", 31000, b_command, b_env, f"prefill graph breakable: {b_note}"),
        Server("C", 32000, c_command, {}, "SGLang defaults, no deterministic inference"),
    ]
    explain = [
        a_text,
        b_text,
        *(f"{s.name}: {shlex.join(s.command)}  env={s.env}  # {s.note}" for s in servers),
    ]
    (out / "explain.txt").write_text("\n".join(explain) + "\n")

    summary: list[str] = []
    try:
        for server in servers:
            start(server, out)
            loaded = wait_for(server, LOADED, min(deadline, time.monotonic() + 90))
            summary.append(
                f"{server.name}: started at {time.monotonic() - started:.0f} s; "
                f"weights loaded before the next started: {loaded}"
            )
        waiting = list(servers)
        while waiting and time.monotonic() < deadline - 120:
            for server in list(waiting):
                if server.process is not None and server.process.poll() is not None:
                    summary.append(
                        f"{server.name}: exited {server.process.returncode} before it was healthy"
                    )
                    waiting.remove(server)
                elif healthy(server):
                    server.healthy_after = time.monotonic() - started
                    waiting.remove(server)
            time.sleep(2)
        for server in servers:
            if server.healthy_after is None:
                summary.append(f"{server.name}: not healthy; not checked")
                continue
            left = max(30.0, deadline - time.monotonic())
            words = [
                "check",
                server.url,
                "--json",
                "--timeout",
                "120",
                "--prompt-words",
                options.prompt_words,
            ]
            began = time.monotonic()
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "detargs.cli", *words],
                    capture_output=True,
                    text=True,
                    timeout=left,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                summary.append(f"{server.name}: the check ran past the budget")
                continue
            took = time.monotonic() - began
            (out / f"check-{server.name}.json").write_text(done.stdout or done.stderr)
            summary.append(
                f"\n== {server.name} ({server.note}): healthy after "
                f"{server.healthy_after:.0f} s; detargs check exit {done.returncode} "
                f"in {took:.1f} s"
            )
            summary.append(f"   {shlex.join(server.command)}")
            if done.stdout.strip().startswith("{"):
                from detargs.check import CheckReport

                report = CheckReport.from_json(done.stdout)
                summary.append(report.summary())
                for probe in report.probes:
                    groups = "; ".join(
                        f"{g.label}: {g.unique_outputs}/{g.runs}" for g in probe.groups
                    )
                    summary.append(f"   {probe.name} groups (unique/runs): {groups}")
            else:
                summary.append(done.stderr.strip())
    finally:
        for server in servers:
            stop(server)
        for server in servers:
            if server.log is not None:
                server.log.close()
            tail = log_text(server)
            (out / f"server-{server.name}.log").write_text(tail)
            server.log_path.unlink(missing_ok=True)
        summary.append(f"\ntotal {time.monotonic() - started:.0f} s")
        (out / "summary.txt").write_text("\n".join(summary) + "\n")
        print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
