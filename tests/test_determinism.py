"""The same inputs give byte-identical argv, env and fingerprint in every process.

Each case runs ``python -m detargs.cli resolve --format json`` in fresh interpreters
with different ``PYTHONHASHSEED`` values (set and unset hash randomisation change the
order of sets and of str-keyed dicts built from them) and with the SGLang flags given in
permuted orders. ``os.environ`` is never modified: each child gets its own ``env``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import detargs

SRC = str(Path(detargs.__file__).resolve().parents[1])
SEEDS = ("0", "4242", "random")

# Each case: detargs options, then SGLang flag groups (a flag with its values).
CASES = [
    pytest.param(
        ["--device", "h100x4", "--sglang-version", "0.5.23"],
        [
            ["--model-path", "org/model"],
            ["--enable-deterministic-inference"],
            ["--tp", "4"],
            ["--log-level", "debug"],
            ["--random-seed", "7"],
            ["--context-length", "4096"],
            ["--host", "0.0.0.0"],
            ["--port", "8000"],
            ["--trust-remote-code"],
            ["--json-model-override-args", '{"b": 1, "a": 2}'],
            ["--served-model-name", "x y"],
        ],
        id="h100x4-tp4-0.5.23",
    ),
    pytest.param(
        [
            "--device",
            "b200x8",
            "--sglang-version",
            "0.5.14",
            "--model-arch",
            "DeepseekV3ForCausalLM",
        ],
        [
            ["--model-path", "deepseek-ai/DeepSeek-V3"],
            ["--enable-deterministic-inference"],
            ["--tp-size", "8"],
            ["--kv-cache-dtype", "fp8_e5m2"],
            ["--mem-fraction-static", "0.8"],
            ["--chunked-prefill-size", "8192"],
            ["--log-level", "info"],
        ],
        id="b200x8-mla-0.5.14",
    ),
    pytest.param(
        ["--device", "a100x2", "--sglang-version", "0.5.6", "--on-conflict", "override"],
        [
            ["--model-path", "m"],
            ["--enable-deterministic-inference"],
            ["--attention-backend", "flashinfer"],
            ["--sampling-backend", "flashinfer"],
            ["--cuda-graph-max-bs", "16"],
            ["--dp", "2"],
            ["--disable-radix-cache"],
        ],
        id="a100x2-override-0.5.6",
    ),
]


def _child_env(seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    for name in (
        "DETARGS_DEVICE",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_ALGO",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ):
        env.pop(name, None)  # the same for every child, and no conflicts from the caller
    return env


def _resolve_json(options: list[str], groups: list[list[str]], seed: str) -> bytes:
    argv = [word for group in groups for word in group]
    command = [
        sys.executable,
        "-m",
        "detargs.cli",
        "resolve",
        "--format",
        "json",
        *options,
        "--",
        *argv,
    ]
    done = subprocess.run(
        command, env=_child_env(seed), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _essentials(output: bytes) -> tuple[list[str], dict[str, str], str]:
    data: dict[str, Any] = json.loads(output)
    return data["argv"], data["env"], data["fingerprint"]


@pytest.mark.parametrize(("options", "groups"), CASES)
def test_every_hash_seed_gives_the_same_bytes(options: list[str], groups: list[list[str]]) -> None:
    outputs = {seed: _resolve_json(options, groups, seed) for seed in SEEDS}
    first = outputs[SEEDS[0]]
    for seed, output in outputs.items():
        assert output == first, f"PYTHONHASHSEED={seed} changed the output"
    argv, _, fingerprint = _essentials(first)
    assert argv
    assert len(fingerprint) == 16


@pytest.mark.parametrize(("options", "groups"), CASES)
def test_flag_order_does_not_change_argv_env_or_fingerprint(
    options: list[str], groups: list[list[str]]
) -> None:
    shuffler = random.Random(20260101)
    orders = [list(reversed(groups))]
    orders += [shuffler.sample(groups, len(groups)) for _ in range(1)]
    baseline = _essentials(_resolve_json(options, groups, "0"))
    for order, seed in zip(orders, itertools.cycle(SEEDS[1:])):
        assert _essentials(_resolve_json(options, order, seed)) == baseline, order


def test_the_children_did_not_touch_this_process_environment() -> None:
    before = dict(os.environ)
    _resolve_json(
        ["--device", "h100x2", "--sglang-version", "0.5.23"],
        [["--enable-deterministic-inference"], ["--tp", "2"]],
        "random",
    )
    assert dict(os.environ) == before
