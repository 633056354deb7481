"""Prove that resolved launches are accepted by SGLang's real parser, release by release.

For every catalogued release, resolve a table of launches (devices x models x the
origin fixtures x tensor parallelism), write their argvs to a JSON file, and hand it to
``tools/verify_catalogue.py --argv-file``, which runs each release's own
``parser.parse_args`` on them. Heavy (it builds 37 real parsers), run by hand:

    python3 tools/verify_resolved.py [--out argvs.json] [--releases 0.5.10 0.5.23]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Final

_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "src"))

from packaging.version import Version  # noqa: E402

from detargs import ConflictError, DetargsWarning, from_argv, resolve  # noqa: E402
from detargs.resolution import OnConflict  # noqa: E402
from detargs.sglang.catalogue import releases  # noqa: E402

DEVICES: Final = ("h100", "b200", "rtx-pro-6000", "a100", "h100x8")
MODELS: Final = (None, "DeepseekV2ForCausalLM")


def fixture_argvs(release: str) -> dict[str, list[str]]:
    max_bs = (
        "--cuda-graph-max-bs"
        if Version(release) < Version("0.5.15")
        else ("--cuda-graph-max-bs-decode")
    )
    return {
        "plain": ["--enable-deterministic-inference"],
        "standalone-spec": [
            "--trust-remote-code",
            max_bs,
            "8",
            "--speculative-algorithm",
            "STANDALONE",
            "--speculative-draft-model-path",
            "D",
            "--speculative-num-steps",
            "4",
            "--speculative-eagle-topk",
            "2",
            "--speculative-num-draft-tokens",
            "7",
            "--mem-fraction-static",
            "0.7",
            "--attention-backend",
            "triton",
            "--enable-deterministic-inference",
        ],
        "mla-fp8": [
            "--trust-remote-code",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--enable-deterministic-inference",
        ],
        "tp-radix-off": [
            "--enable-deterministic-inference",
            "--disable-radix-cache",
            "--tp-size",
            "2",
            "--chunked-prefill-size",
            "-1",
        ],
    }


def overridden_argvs(release: str) -> dict[str, list[str]]:
    """Launches with a prefill CUDA graph asked for, resolved with ``--on-conflict override``."""
    version = Version(release)
    argvs: dict[str, list[str]] = {}
    if Version("0.5.10") <= version <= Version("0.5.19"):
        argvs["enforce-piecewise"] = [
            "--enforce-piecewise-cuda-graph",
            "--enable-deterministic-inference",
        ]
    if version >= Version("0.5.14"):
        argvs["breakable-prefill"] = [
            "--cuda-graph-backend-prefill",
            "breakable",
            "--enable-deterministic-inference",
        ]
        argvs["graph-config"] = [
            "--cuda-graph-config",
            '{"prefill": {"backend": "full"}, "decode": {"backend": "full"}}',
            "--enable-deterministic-inference",
        ]
    return argvs


def table(chosen: list[str]) -> dict[str, list[list[str]]]:
    result: dict[str, list[list[str]]] = {}
    for release in chosen:
        argvs: list[list[str]] = []
        cases: list[tuple[str, list[str], OnConflict]] = [
            (name, argv, "error") for name, argv in fixture_argvs(release).items()
        ]
        cases += [(name, argv, "override") for name, argv in overridden_argvs(release).items()]
        for name, argv, on_conflict in cases:
            for profile in DEVICES:
                # tensor parallelism needs the GPUs: a one-GPU profile runs it as two
                tp = "--tp-size" in argv and re.search(r"x\d+$", profile) is None
                device = f"{profile}x2" if tp else profile
                for model_arch in MODELS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DetargsWarning)
                        args = from_argv(["--model-path", "m", *argv], release)
                        try:
                            launch = resolve(
                                args,
                                device=device,
                                sglang_version=release,
                                model_arch=model_arch,
                                environ={},
                                on_conflict=on_conflict,
                            )
                        except ConflictError as error:
                            print(f"{release} {name} {device} {model_arch}: conflict ({error})")
                            continue
                    if list(launch.argv) not in argvs:
                        argvs.append(list(launch.argv))
        result[release] = argvs
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--releases", nargs="*", default=None)
    options = parser.parse_args()
    chosen = options.releases or list(releases())
    argvs = table(chosen)
    total = sum(len(v) for v in argvs.values())
    print(f"{total} distinct resolved argvs over {len(chosen)} releases")
    out = options.out or Path(tempfile.mkdtemp()) / "resolved-argvs.json"
    out.write_text(json.dumps(argvs, indent=1), "utf-8")
    verify = [sys.executable, str(_ROOT / "tools" / "verify_catalogue.py"), "--argv-file", str(out)]
    return subprocess.run(verify, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
