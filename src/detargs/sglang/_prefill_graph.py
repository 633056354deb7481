"""The ``piecewise_cuda_graph`` field in every release's spelling: read, written, named.

SGLang asked for piecewise (prefill) CUDA graphs three ways: ``--enable-piecewise-cuda-graph``
(0.5.3.post2–0.5.9), ``--enforce-``/``--disable-piecewise-cuda-graph`` (0.5.10–0.5.13) and
``--cuda-graph-backend-prefill tc_piecewise``/``disabled`` (0.5.14 on), where the other
values of that flag (``breakable``, ``full``) are passthrough, not this field. This module
is the one place that knows it; the argv reader, the writer, the rules and the messages ask
it. It imports no other detargs module at import time: the plain record
(``detargs.sglang._values``) uses its clash check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .catalogue import Catalogue

__all__ = [
    "DEST",
    "FIELD",
    "SWITCHES",
    "clash",
    "decode",
    "encode",
    "flag_name",
]

FIELD: Final = "piecewise_cuda_graph"
DEST: Final = "cuda_graph_backend_prefill"
"""The dest of ``--cuda-graph-backend-prefill`` (0.5.14 on)."""
PIECEWISE: Mapping[str, bool] = {"tc_piecewise": True, "disabled": False}
"""The prefill CUDA-graph backends (0.5.14 on) that are the ``piecewise_cuda_graph`` field."""
SWITCHES: Final = (
    "enable_piecewise_cuda_graph",
    "enforce_piecewise_cuda_graph",
    "disable_piecewise_cuda_graph",
)
"""The dests of the switches that spelled the field up to 0.5.13."""
_ON: Final = ("enforce_piecewise_cuda_graph", "enable_piecewise_cuda_graph")
_OFF: Final = ("disable_piecewise_cuda_graph",)


def decode(values: Mapping[str, Any]) -> tuple[bool | None, dict[str, Any]]:
    """Split values read by dest into the field's value they spell and every other dest.

    A switch that is not on says nothing; SGLang lets ``--enforce-piecewise-cuda-graph``
    win over ``--disable-piecewise-cuda-graph``.

    >>> decode({"cuda_graph_backend_prefill": "disabled", "tp_size": 2})
    (False, {'tp_size': 2})
    >>> decode({"cuda_graph_backend_prefill": "breakable"})
    (None, {'cuda_graph_backend_prefill': 'breakable'})
    """
    said: dict[str, bool] = {}
    rest: dict[str, Any] = {}
    for dest, value in values.items():
        if dest == DEST and value in PIECEWISE:
            said[dest] = PIECEWISE[value]
        elif dest in SWITCHES:
            if value is True:
                said[dest] = dest not in _OFF
        else:
            rest[dest] = value
    if not said:
        return None, rest
    return said.get("enforce_piecewise_cuda_graph", any(said.values())), rest


def encode(value: bool | None, catalogue: Catalogue) -> list[str]:
    """The words that say ``value`` in ``catalogue``'s release (none where it is the default)."""
    if value is None:
        return []
    prefill = catalogue.primary(DEST)
    if prefill is not None and prefill.choices is not None:
        choice = "tc_piecewise" if value else "disabled"
        if choice in prefill.choices:
            return [prefill.name, choice]
    for dest in _ON if value else _OFF:
        flag = catalogue.primary(dest)
        if flag is not None and flag.kind == "store_true":
            return [flag.name]
    if not value:
        # piecewise CUDA graphs are off by default in this release: nothing to say
        return []
    raise _cannot_request(catalogue.release)


def flag_name(catalogue: Catalogue) -> str:
    """How a user asks for piecewise CUDA graphs in ``catalogue``'s release."""
    for dest in _ON:
        flag = catalogue.primary(dest)
        if flag is not None and flag.kind == "store_true":
            return flag.name
    prefill = catalogue.primary(DEST)
    return f"{prefill.name} tc_piecewise" if prefill else "--enable-piecewise-cuda-graph"


def clash(piecewise: bool | None, extra: Mapping[str, Any]) -> str | None:
    """Why ``piecewise_cuda_graph`` and the passthrough ``extra`` cannot stand together."""
    if extra.get(DEST) in PIECEWISE:
        return (
            f"cuda_graph_backend_prefill={extra[DEST]!r} says whether prefill "
            "uses piecewise CUDA graphs: set piecewise_cuda_graph instead"
        )
    if piecewise is not None and DEST in extra:
        return (
            "piecewise_cuda_graph and extra['cuda_graph_backend_prefill'] both choose the "
            "prefill CUDA graph backend: keep one"
        )
    return None


def _cannot_request(release: str) -> Exception:
    from ..errors import InvalidArgsError
    from ._flag_messages import spans
    from .catalogue import flag_history

    spellings = (
        ("--enable-piecewise-cuda-graph", "", lambda kind, _: kind == "store_true"),
        ("--enforce-piecewise-cuda-graph", "", lambda kind, _: kind != "noop"),
        (
            "--cuda-graph-backend-prefill",
            " tc_piecewise",
            lambda _, choices: "tc_piecewise" in (choices or ()),
        ),
    )
    where = "; ".join(
        f"{option}{value} in "
        + spans(tuple(flag for flag in flag_history(option) if keep(flag.kind, flag.choices)))
        for option, value, keep in spellings
    )
    return InvalidArgsError(
        f"piecewise CUDA graphs cannot be requested in SGLang {release}; SGLang "
        f"took them as {where}",
        flag="--enforce-piecewise-cuda-graph",
    )
