from __future__ import annotations

import pytest

from detargs import InvalidArgsError, target_version
from detargs.catalogue import releases


def _none() -> str | None:
    return None


@pytest.mark.parametrize(
    ("requested", "installed", "release", "source", "warns"),
    [
        pytest.param("0.5.10", None, "0.5.10", "explicit", False, id="explicit-exact"),
        pytest.param("0.5.10.post1", None, "0.5.10.post1", "explicit", False, id="post-exact"),
        pytest.param("0.5.10post1", None, "0.5.10.post1", "explicit", False, id="post-normalised"),
        pytest.param("0.5.3", None, "0.5.3", "explicit", False, id="first-catalogued"),
        pytest.param("0.5.24", None, "0.5.23", "explicit", True, id="newer-falls-back"),
        pytest.param("0.5.10.post7", None, "0.5.10.post1", "explicit", True, id="unknown-post"),
        pytest.param("0.5.11rc1", None, "0.5.10.post1", "explicit", True, id="pre-release"),
        pytest.param("1.0", None, "0.5.23", "explicit", True, id="major-newer"),
        pytest.param(None, "0.5.14", "0.5.14", "installed", False, id="installed"),
        pytest.param(None, "0.5.30.dev0", "0.5.23", "installed", True, id="installed-dev"),
        pytest.param(None, None, releases()[-1], "newest", False, id="nothing-newest"),
        pytest.param("0.5.9", "0.5.14", "0.5.9", "explicit", False, id="explicit-beats-installed"),
    ],
)
def test_target_version(
    requested: str | None, installed: str | None, release: str, source: str, warns: bool
) -> None:
    target = target_version(requested, installed=lambda: installed)
    assert (target.release, target.source) == (release, source)
    assert bool(target.warnings) is warns
    if warns:
        assert release in target.warnings[0]
        assert "not in the flag catalogue" in target.warnings[0]


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        pytest.param("0.5.2", "older than 0.5.3", id="before-deterministic"),
        pytest.param("0.4.10.post2", "older than 0.5.3", id="old-series"),
        pytest.param("latest", "not a version", id="not-a-version"),
        pytest.param("", "not a version", id="empty"),
    ],
)
def test_bad_versions_name_the_option(requested: str, message: str) -> None:
    with pytest.raises(InvalidArgsError, match=message) as caught:
        target_version(requested, installed=_none)
    assert caught.value.flag == "--sglang-version"


def test_installed_version_is_read_without_importing_sglang() -> None:
    import sys

    target_version(None)
    assert "sglang" not in sys.modules
