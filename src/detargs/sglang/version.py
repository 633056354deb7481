"""Which SGLang release a launch targets.

The target is, in order: the version the caller names; else the version of an
installed ``sglang`` distribution, read from its package metadata (sglang itself is
never imported: that would pull in torch); else the newest catalogued release.

A version the catalogue does not hold resolves to the newest catalogued release
older than it, with a warning that says so. Post releases resolve exactly.

>>> target_version("0.5.10.post1").release
'0.5.10.post1'
>>> target_version("0.5.24").release  # newer than the catalogue
'0.5.23'
"""

from __future__ import annotations

import bisect
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from ..errors import InvalidArgsError
from .catalogue import release_version, releases

__all__ = ["TargetVersion", "installed_sglang_version", "target_version"]

VersionSource = Literal["explicit", "installed", "newest"]


@dataclass(frozen=True)
class TargetVersion:
    """The catalogued SGLang release a launch is resolved for, and how it was chosen."""

    release: str
    """The catalogued release whose flags and rules apply, e.g. ``"0.5.10.post1"``."""
    requested: str | None
    """The version asked for or found installed, as written; ``None`` for the newest."""
    source: VersionSource
    warnings: tuple[str, ...] = ()

    @property
    def version(self) -> Version:
        return release_version(self.release)

    def __str__(self) -> str:
        return self.release


def installed_sglang_version() -> str | None:
    """The version of the installed ``sglang`` distribution, from its metadata only.

    Found as ``importlib.metadata.version("sglang")`` finds it: the first ``sys.path``
    entry holding an ``sglang-*.dist-info`` or ``sglang*.egg-info`` (or that is an
    unzipped ``sglang-*.egg``), its ``Version`` header; zipped eggs and custom finders,
    which sglang's wheels never produce, are not read. Read directly because importing
    ``importlib.metadata`` pulls in the email package, which cost more than the rest of a
    cold ``detargs resolve``;
    ``tests/test_version.py`` holds the two readings together. Directory listings are
    cached by modification time, as importlib.metadata caches them, so a warm
    ``resolve()`` pays one ``stat`` per ``sys.path`` entry.
    """
    for entry in sys.path:
        directory = entry or "."
        try:
            modified = os.stat(directory).st_mtime_ns
        except (OSError, TypeError, ValueError):
            continue
        for name in _sglang_infos(directory, modified):
            version = _version_header(os.path.join(directory, name))
            if version is not None:
                return version
    return None


@functools.lru_cache(maxsize=128)
def _sglang_infos(directory: str, modified: int) -> tuple[str, ...]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return ()
    found, eggs = [], []
    egg = os.path.basename(directory).lower()
    for name in names:
        stem, _, suffix = name.lower().rpartition(".")
        if suffix in ("dist-info", "egg-info") and stem.partition("-")[0] == "sglang":
            found.append(name)
        elif (
            name.lower() == "egg-info"
            and egg.endswith(".egg")
            and (egg.partition("-")[0] == "sglang")
        ):
            eggs.append(name)  # an unzipped egg on sys.path: sglang-X-pyY.egg/EGG-INFO
    return (*found, *eggs)


def _version_header(info: str) -> str | None:
    candidates = (
        [info]
        if os.path.isfile(info)
        else [os.path.join(info, "METADATA"), os.path.join(info, "PKG-INFO")]
    )
    for path in candidates:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                for line in file:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    key, _, value = line.partition(":")
                    if key.strip().lower() == "version":
                        return value.strip()
        except OSError:
            continue
    return None


def target_version(
    sglang_version: str | Version | TargetVersion | None = None,
    *,
    installed: Callable[[], str | None] = installed_sglang_version,
) -> TargetVersion:
    """Resolve the release a launch targets (see the module docstring for the order)."""
    if isinstance(sglang_version, TargetVersion):
        return sglang_version
    if sglang_version is not None:
        return _match(str(sglang_version), "explicit")
    found = installed()
    if found is not None:
        return _match(found, "installed")
    return TargetVersion(release=releases()[-1], requested=None, source="newest")


@functools.lru_cache(maxsize=256)
def _match(requested: str, source: VersionSource) -> TargetVersion:
    origin = "--sglang-version" if source == "explicit" else "the installed sglang package"
    try:
        wanted = Version(requested.strip())
    except InvalidVersion:
        raise InvalidArgsError(
            f"{origin}: {requested!r} is not a version; write it like 0.5.10 or 0.5.10.post1",
            flag="--sglang-version",
        ) from None
    catalogued = releases()
    versions = [release_version(release) for release in catalogued]
    position = bisect.bisect_right(versions, wanted)
    if position and versions[position - 1] == wanted:
        return TargetVersion(release=catalogued[position - 1], requested=requested, source=source)
    if position == 0:
        raise InvalidArgsError(
            f"{origin}: SGLang {requested} is older than {catalogued[0]}, the first release with "
            f"--enable-deterministic-inference; upgrade SGLang or pass a version from "
            f"{catalogued[0]} to {catalogued[-1]}",
            flag="--sglang-version",
        )
    fallback = catalogued[position - 1]
    warning = (
        f"SGLang {requested} is not in the flag catalogue ({catalogued[0]}–{catalogued[-1]}); "
        f"resolving for {fallback}, the newest catalogued release before it"
    )
    return TargetVersion(release=fallback, requested=requested, source=source, warnings=(warning,))
