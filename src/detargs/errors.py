"""Every error detargs raises, in one tree.

The hierarchy::

    DetargsError                      base of everything detargs raises on purpose
    ├── InvalidArgsError (ValueError) a launch argument, flag or version is wrong      exit 2
    ├── ConflictError (ValueError)    what the user asked for contradicts a rule       exit 2
    ├── DeviceError                   the GPU cannot be known or cannot be served      exit 3
    │   ├── DeviceDetectionError      NVML, CUDA_VISIBLE_DEVICES, profile or JSON failed
    │   └── UnsupportedDeviceError    the GPU cannot run a deterministic launch
    ├── PlanMismatchError             this node does not match the multi-node plan     exit 4
    ├── NondeterminismError           a checked server gave two outputs for one request exit 5
    └── CheckError                    a server could not be checked (down, bad answer) exit 6

    DetargsWarning (UserWarning)      something was assumed; the launch still stands

Each class carries the CLI exit code for it in ``exit_code``. Messages name the
flag or variable that is wrong and say what to do about it, in one paragraph.
``InvalidArgsError`` and ``ConflictError`` derive from ``ValueError`` so that code
that already catches ``ValueError`` around argument handling keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CheckError",
    "Conflict",
    "ConflictError",
    "DetargsError",
    "DetargsWarning",
    "DeviceDetectionError",
    "DeviceError",
    "InvalidArgsError",
    "NondeterminismError",
    "PlanMismatchError",
    "UnsupportedDeviceError",
]


class DetargsError(Exception):
    """Base class of every error detargs raises on purpose."""

    exit_code: ClassVar[int] = 1


class InvalidArgsError(DetargsError, ValueError):
    """A launch argument, flag, value or SGLang version is not valid.

    ``flag`` names the offending flag (``--attention-backend``) or option when known.

    >>> from detargs import from_argv
    >>> try:
    ...     from_argv(["--atention-backend", "fa3"], sglang_version="0.5.23")
    ... except InvalidArgsError as error:
    ...     print(error.flag, "->", str(error).split(": ")[-1])
    --atention-backend -> did you mean --attention-backend?
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, message: str, *, flag: str | None = None) -> None:
        super().__init__(message)
        self.flag = flag


@dataclass(frozen=True)
class Conflict:
    """One contradiction between a value the user set and what a rule requires."""

    flag: str
    """The flag as the user would write it, e.g. ``--attention-backend``."""
    user_value: object
    """What the user set."""
    required: object
    """What the rule requires (``None`` when no value would do)."""
    rule: str
    """The name of the rule that requires it."""
    reason: str
    """Why, as a sentence a user can act on."""
    fixable: bool = True
    """Whether ``on_conflict="override"`` settles it (a refusal: no value would)."""

    def describe(self) -> str:
        if not self.fixable:
            required = " (no value works)"
        elif self.required is None:
            required = " (requires it gone)"
        else:
            required = f" (requires {_show(self.required)})"
        return f"{self.flag} {_show(self.user_value)}{required}: {self.reason} [rule {self.rule}]"


class ConflictError(DetargsError, ValueError):
    """What the user asked for contradicts a deterministic-inference rule.

    Every conflict found in one resolution is listed in ``conflicts``; none is
    raised alone while others wait behind it.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, conflicts: tuple[Conflict, ...] | list[Conflict]) -> None:
        self.conflicts = tuple(conflicts)
        lines = "\n".join(f"  - {c.describe()}" for c in self.conflicts)
        count = len(self.conflicts)
        noun = "conflict" if count == 1 else "conflicts"
        fixable = [c.fixable for c in self.conflicts]
        if all(fixable):
            advice = (
                "Change or drop the flags above, or pass on_conflict='override' "
                "(--on-conflict override) to let the rules replace them."
            )
        elif any(fixable):
            advice = (
                "Change or drop the flags above; on_conflict='override' (--on-conflict "
                "override) replaces the ones with a required value, but not those no value fixes."
            )
        else:
            advice = "Change or drop the flags above: no override can make them deterministic."
        super().__init__(f"{count} {noun} with deterministic inference:\n{lines}\n{advice}")


class DeviceError(DetargsError):
    """The GPU that will run the launch cannot be known or cannot be served."""

    exit_code: ClassVar[int] = 3


class DeviceDetectionError(DeviceError):
    """Detection failed: NVML, ``CUDA_VISIBLE_DEVICES``, a profile name or a saved JSON."""


class UnsupportedDeviceError(DeviceError):
    """The GPU is known, but a deterministic launch cannot run on it."""


class PlanMismatchError(DetargsError):
    """This node does not match the plan it was asked to launch (``detargs launch --plan``).

    ``node`` names the node (host name, and the scheduler's name for it when it has one),
    ``rank`` its ``--node-rank`` (``None`` when not known), ``differences`` what differs,
    each as ``what: plan X, this node Y``. Every difference is listed, not the first only.
    """

    exit_code: ClassVar[int] = 4

    def __init__(
        self,
        node: str,
        rank: int | None,
        differences: tuple[str, ...] | list[str],
        *,
        fingerprint: str = "",
    ) -> None:
        self.node = node
        self.rank = rank
        self.differences = tuple(differences)
        where = f"node {node}" + ("" if rank is None else f", rank {rank},")
        plan = f"the plan {fingerprint}" if fingerprint else "the plan"
        super().__init__(
            f"{where} does not match {plan}: {'; '.join(self.differences)}. Nothing was "
            "launched here; run this node with what the plan says, or write the plan again "
            "for these nodes (detargs plan)"
        )


class NondeterminismError(DetargsError):
    """A checked server answered one request with more than one output.

    ``report`` holds the whole ``detargs.check.CheckReport``; the message is its
    divergence summary.
    """

    exit_code: ClassVar[int] = 5

    def __init__(self, message: str, *, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class CheckError(DetargsError):
    """A server could not be checked: unreachable, a bad URL, a timeout, an answer that
    is not what the protocol promises, or the check's own dependencies missing."""

    exit_code: ClassVar[int] = 6


class DetargsWarning(UserWarning):
    """Something was assumed (an uncatalogued version, an unknown model family)."""


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "set" if value else "unset"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)
