"""Cold ``detargs resolve`` of two source trees, interleaved in one run: the A/B behind
each "before -> after" figure in docs/performance.md.

    git worktree add /tmp/before <commit>
    python benchmarks/ab.py /tmp/before/src src            # profile device (h100)
    python benchmarks/ab.py /tmp/before/src src --nvml     # and NVML auto-detection

Each repetition runs every tree and case once (after one discarded warm-up each), so a
change in machine load hits both alike; prints medians and the after/before ratio.
Standard library only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics

from bench import child_env, timed_child

_RESOLVE = ("-m", "detargs.cli", "resolve")
_ARGS = ("--", "--enable-deterministic-inference")


def _cold(tree: str, device: list[str]) -> float:
    env = child_env()
    # the tree under test first, ahead of whichever detargs child_env found
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    wall, _ = timed_child([*_RESOLVE, *device, *_ARGS], env)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the src directory of the older tree")
    parser.add_argument("after", help="the src directory of the newer tree")
    parser.add_argument("--nvml", action="store_true", help="also time NVML auto-detection")
    parser.add_argument("--repetitions", type=int, default=15)
    options = parser.parse_args()
    cases = {"--device h100": ["--device", "h100"]}
    if options.nvml:
        cases["NVML auto-detect"] = []
    trees = {"before": options.before, "after": options.after}
    samples: dict[tuple[str, str], list[float]] = {}
    for tree in trees.values():
        for device in cases.values():
            _cold(tree, device)
    for _ in range(options.repetitions):
        for label, tree in trees.items():
            for case, device in cases.items():
                samples.setdefault((case, label), []).append(_cold(tree, device))
    for case in cases:
        before = statistics.median(samples[(case, "before")])
        after = statistics.median(samples[(case, "after")])
        print(
            f"cold detargs resolve, {case:<17} before {1000 * before:6.1f} ms   "
            f"after {1000 * after:6.1f} ms   after/before {after / before:.2f}×"
        )


if __name__ == "__main__":
    main()
