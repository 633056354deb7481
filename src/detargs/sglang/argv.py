"""The argv codec: SGLang launcher argv <-> ``ServerArgs``, exact for each release.

``from_argv`` reads what the target release's own argparse parser reads (aliases,
unique prefixes, ``--flag=value``, store_true, nargs lists, repeated flags with the
last one winning) and refuses the rest with ``InvalidArgsError`` naming the flag.
``to_argv`` is canonical: fields in declaration order, then passthrough flags by
name; only what the user set or a rule decided.

They are the public edge of the codec: what reading assumed (a repeated flag, a flag
without effect, a release detargs has no catalogue for) comes back as data from the
readers beneath (``detargs.sglang._argv_read``, ``detargs.sglang._argv_write``) and is warned here,
as ``DetargsWarning``.

>>> args = from_argv(["--tp", "2", "--attention-backend=fa3"], sglang_version="0.5.23")
>>> to_argv(args, sglang_version="0.5.23")
['--attention-backend', 'fa3', '--tp-size', '2']
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..errors import DetargsWarning
from ._argv_read import read_values
from ._argv_write import encode_values
from .version import TargetVersion, target_version

if TYPE_CHECKING:
    from .args import ServerArgs

__all__ = ["from_argv", "to_argv"]


def from_argv(argv: Sequence[str], sglang_version: str | TargetVersion | None = None) -> ServerArgs:
    """Parse launcher arguments as the target SGLang release's parser would.

    ``--model-path`` is optional here: test launchers add it themselves.
    """
    from .args import ServerArgs

    target = target_version(sglang_version)
    values, notes = read_values(argv, target)
    args = ServerArgs.from_values(values)
    _warn((*target.warnings, *notes))
    return args


def to_argv(args: ServerArgs, sglang_version: str | TargetVersion | None = None) -> list[str]:
    """The canonical argv for ``args`` in the target release's spelling."""
    target = target_version(sglang_version)
    _warn(target.warnings)
    return encode_values(args.values(), target)


def _warn(texts: Iterable[str]) -> None:
    # stacklevel 3: the caller of from_argv/to_argv
    for text in texts:
        warnings.warn(text, DetargsWarning, stacklevel=3)
