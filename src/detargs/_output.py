"""The CLI's output: stdout behind a guard that turns failed writes into one error, and
stderr lines that never fall back to stdout.

A reader that went away (EPIPE), a full disk or a closed stdout surface as ``OutputError``
from any write or flush, so ``detargs.cli.main`` can end the command the way well-kept
Unix tools do; see docs/cli.md for the exit codes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .errors import InvalidArgsError

__all__ = ["Output", "OutputError", "emit", "flush_stderr", "say", "warn_all"]


def emit(text: str, out: TextIO) -> None:
    """Print ``text``; words that came in as undecodable bytes go out as the same bytes."""
    try:
        print(text, file=out)
        return
    except UnicodeEncodeError:
        pass
    buffer = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        data = (text + "\n").encode(encoding, "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidArgsError(
            f"the output cannot be written in this terminal's encoding ({encoding}); set "
            "PYTHONIOENCODING=utf-8 (or a UTF-8 locale) and run it again"
        ) from None
    if buffer is None:
        print(data.decode(encoding, "backslashreplace"), end="", file=out)
        return
    out.flush()
    buffer.write(data)
    buffer.flush()


class OutputError(Exception):
    """Writing stdout failed. Not an OSError: argparse swallows those while printing."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(reason)
        self.errno = number
        self.reason = reason


class Output:
    """stdout, with every failed write turned into ``OutputError``."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def buffer(self) -> Output | None:
        buffer = getattr(self._stream, "buffer", None)
        return None if buffer is None else Output(buffer)

    def write(self, text: Any) -> int:
        return int(self._guarded("write", text) or 0)

    def flush(self) -> None:
        self._guarded("flush")

    def isatty(self) -> bool:
        try:
            return bool(self._stream is not None and self._stream.isatty())
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError(errno.EBADF, "standard output is closed")
        return self._stream.fileno()

    def _guarded(self, method: str, *args: Any) -> Any:
        if self._stream is None:
            raise OutputError(errno.EBADF, "it is closed")
        try:
            return getattr(self._stream, method)(*args)
        except UnicodeEncodeError:
            raise
        except (OSError, ValueError) as error:
            number = getattr(error, "errno", None) or errno.EIO
            if isinstance(error, ValueError):  # "I/O operation on closed file"
                number = errno.EBADF
            reason = getattr(error, "strerror", None) or str(error)
            raise OutputError(number, reason) from None

    def discard(self) -> None:
        """Point the stream's file descriptor at /dev/null, so that interpreter exit does
        not retry the failed write and print "Exception ignored" on stderr."""
        try:
            descriptor = self.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
        except (AttributeError, OSError, ValueError):
            return  # not a file (a test's StringIO): nothing is retried at exit
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)


def say(text: str) -> None:
    """One line on stderr. Never on stdout: with stderr closed (``2>&-``), ``print(file=
    sys.stderr)`` would fall back to stdout and mix into what a script captures."""
    err = sys.stderr
    if err is None:
        return
    try:
        print(text, file=err)
    except (OSError, ValueError):
        return  # nowhere left to say it


def flush_stderr() -> None:
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


def warn_all(texts: Sequence[str]) -> None:
    for text in texts:
        say(f"detargs: warning: {text}")
