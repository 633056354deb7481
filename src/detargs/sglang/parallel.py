"""How many GPUs a launch's parallelism takes, and whether the nodes have them.

One check, used by ``resolve()`` (one machine: ``--nnodes`` from the arguments, default
1) and by ``detargs plan`` (``--nnodes N`` machines of one kind). What SGLang does,
read from its released ``server_args`` (0.5.23's ``compute_world_size``, and every
release's ``--enable-dp-attention``):

- the processes of one launch number ``dp_size x tp_size x pp_size``, one GPU each;
- with ``--enable-dp-attention`` the data-parallel groups live inside the tensor-parallel
  group (0.5.22+ moves ``--dp-size`` into ``--attn-dp-size`` then): no extra GPUs, and
  ``--attn-dp-size`` never adds any;
- across nodes the ranks are split evenly, ``world_size // nnodes`` per node, so the
  count must divide by the node count and no node may be left without a rank.

>>> print(fit_problem({"tp_size": 2}, {}, gpus_per_node=1, nnodes=1, device="h100")[:50])
--tp-size 2 needs 2 GPUs, but h100 has 1 GPU; lowe
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["fit_problem"]

PIPELINE_DESTS: Final = ("pipeline_parallel_size", "pp_size")
"""The dest of ``--pp-size``: ``pipeline_parallel_size`` up to 0.5.13.post1, then ``pp_size``."""
_DP_ATTENTION: Final = "enable_dp_attention"


def _int(value: Any, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _factors(values: Mapping[str, Any], extra: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The flags that multiply the GPU count, as ``(flag, size)``, those above 1 only."""
    tp = _int(values.get("tp_size"))
    pp = next((_int(extra[dest]) for dest in PIPELINE_DESTS if dest in extra), 1)
    dp = 1 if extra.get(_DP_ATTENTION) is True else _int(values.get("dp_size"))
    return [
        (flag, size)
        for flag, size in (("--tp-size", tp), ("--pp-size", pp), ("--dp-size", dp))
        if size > 1
    ]


def gpus_needed(values: Mapping[str, Any], extra: Mapping[str, Any]) -> int:
    """The GPUs one launch takes over all its nodes: ``dp x tp x pp`` (see the module doc).

    ``values`` are the launch's field values (``tp_size``, ``dp_size``), ``extra`` its
    passthrough flags by dest.

    >>> gpus_needed({"tp_size": 8, "dp_size": 2}, {"pp_size": 2})
    32
    >>> gpus_needed({"tp_size": 8, "dp_size": 8}, {"enable_dp_attention": True})
    8
    """
    total = 1
    for _, size in _factors(values, extra):
        total *= size
    return total


def fit_problem(
    values: Mapping[str, Any],
    extra: Mapping[str, Any],
    *,
    gpus_per_node: int,
    nnodes: int,
    device: str,
) -> str | None:
    """Why the launch's parallelism does not fit ``nnodes`` machines of ``gpus_per_node``
    GPUs (``device`` names them in the message), or ``None`` when it does."""
    factors = _factors(values, extra)
    needed = gpus_needed(values, extra)
    asked = " x ".join(f"{flag} {size}" for flag, size in factors) or "--tp-size 1"
    have = gpus_per_node * nnodes
    machines = (
        f"{device} has {_gpus(gpus_per_node)}"
        if nnodes == 1
        else f"{nnodes} nodes of {device} have {_gpus(have)}"
    )
    if needed > have:
        largest = factors[0][0] if factors else "--tp-size"
        if nnodes == 1:
            example = (
                f" (e.g. --device {_profile_stem(device)}x{needed})"
                if (" " not in device and needed <= 8)
                else ""
            )
            fix = (
                f"resolve for a machine with {needed} GPUs{example}, or spread the launch "
                "over nodes with detargs plan --nnodes"
            )
        else:
            fix = (
                f"plan for {-(-needed // gpus_per_node)} nodes (--nnodes), or for nodes "
                "with more GPUs"
            )
        lower = f"lower {largest} to {max(1, have * dict(factors).get(largest, 1) // needed)}"
        return f"{asked} needs {_gpus(needed)}, but {machines}; {lower}, {fix}"
    if nnodes > 1 and needed % nnodes:
        return (
            f"{asked} makes {needed} ranks, which SGLang cannot split evenly over "
            f"{nnodes} nodes ({needed} // {nnodes} per node); use a node count that "
            f"divides {needed}, or change the sizes"
        )
    return None


def _gpus(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"


def _profile_stem(device: str) -> str:
    stem, x, count = device.rpartition("x")
    return stem if x and count.isdigit() and stem else device
