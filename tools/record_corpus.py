"""Record, or check, a corpus of resolutions: what detargs' behaviour is, byte for byte.

Every GPU profile x a sample of releases x a table of launches (the origin fixtures, tensor
parallelism, absorbed-MLA models, fp8 KV caches, overridden conflicts), each recorded as
argv + env + fingerprint, or as the error it raises. ``tests/test_corpus.py`` fails when
detargs resolves any of them differently. A restructuring must leave the corpus as it is;
a deliberate change of behaviour re-records it in the same commit and says why:

    python tools/record_corpus.py --write tests/data/resolution_corpus.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "src"))
sys.path.insert(0, str(_ROOT / "tools"))

from verify_resolved import fixture_argvs  # noqa: E402

from detargs import DetargsError, DetargsWarning, from_argv, resolve  # noqa: E402
from detargs.profiles import profile_names  # noqa: E402
from detargs.resolution import OnConflict  # noqa: E402

RELEASES: Final = (
    "0.5.3",
    "0.5.4.post1",
    "0.5.9",
    "0.5.10",
    "0.5.12",
    "0.5.13",
    "0.5.14",
    "0.5.15",
    "0.5.17",
    "0.5.18",
    "0.5.19",
    "0.5.20",
    "0.5.22",
    "0.5.23",
)
MLA: Final = "DeepseekV2ForCausalLM"
# (name, SGLang words or None for an origin fixture, model_arch, on_conflict)
LAUNCHES: Final[tuple[tuple[str, tuple[str, ...] | None, str | None, OnConflict], ...]] = (
    ("plain", ("--enable-deterministic-inference",), None, "error"),
    ("not-deterministic", ("--tp-size", "1"), None, "error"),
    ("rl-target", ("--rl-on-policy-target", "fsdp"), None, "error"),
    # the origin fixtures, as tools/verify_resolved.py spells them per release
    ("standalone-spec", None, None, "error"),
    ("mla-fp8", None, MLA, "error"),
    (
        "fp8-e5m2",
        ("--kv-cache-dtype", "fp8_e5m2", "--enable-deterministic-inference"),
        None,
        "error",
    ),
    (
        "flashinfer",
        ("--attention-backend", "flashinfer", "--enable-deterministic-inference"),
        None,
        "error",
    ),
    ("fa4", ("--attention-backend", "fa4", "--enable-deterministic-inference"), None, "error"),
    (
        "sampling-override",
        ("--sampling-backend", "flashinfer", "--enable-deterministic-inference"),
        None,
        "override",
    ),
    (
        "disable-cuda-graph",
        ("--disable-cuda-graph", "--enable-deterministic-inference"),
        None,
        "error",
    ),
    ("tp-all", ("--tp-size", "{gpus}", "--enable-deterministic-inference"), None, "error"),
    (
        "tp-all-mla",
        ("--tp-size", "{gpus}", "--kv-cache-dtype", "fp8_e5m2", "--enable-deterministic-inference"),
        MLA,
        "error",
    ),
)
PROFILE_COUNTS: Final = (1, 8)


def _words(launch: str, words: tuple[str, ...] | None, release: str, gpus: int) -> list[str]:
    if words is None:
        return fixture_argvs(release)[launch]
    return [word.format(gpus=gpus) for word in words]


def cases() -> Iterator[tuple[str, str, list[str], str | None, OnConflict]]:
    for name in profile_names():
        for count in PROFILE_COUNTS:
            device = name if count == 1 else f"{name}x{count}"
            for release in RELEASES:
                for launch, words, model_arch, on_conflict in LAUNCHES:
                    if launch.startswith("tp-all") and count == 1:
                        continue
                    argv = ["--model-path", "m", *_words(launch, words, release, count)]
                    yield f"{device}/{release}/{launch}", device, argv, model_arch, on_conflict


def record() -> dict[str, Any]:
    corpus: dict[str, Any] = {}
    for key, device, argv, model_arch, on_conflict in cases():
        release = key.split("/")[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DetargsWarning)
            try:
                launch = resolve(
                    from_argv(argv, release),
                    device=device,
                    sglang_version=release,
                    on_conflict=on_conflict,
                    model_arch=model_arch,
                    environ={},
                )
            except DetargsError as error:
                corpus[key] = {"error": type(error).__name__}
                continue
        corpus[key] = {
            "argv": list(launch.argv),
            "env": dict(launch.env),
            "fingerprint": launch.fingerprint,
        }
    return corpus


def corpus_text(corpus: dict[str, Any]) -> str:
    """One case a line, so that a change shows as the cases it changed."""
    lines = [
        f"{json.dumps(key)}: {json.dumps(corpus[key], separators=(',', ':'))}"
        for key in sorted(corpus)
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", type=Path, required=True)
    options = parser.parse_args()
    options.write.write_text(corpus_text(record()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
