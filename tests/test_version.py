from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from detargs import InvalidArgsError, target_version
from detargs.sglang.catalogue import releases
from detargs.sglang.version import installed_sglang_version


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


def _dist_info(site: Path, name: str, version: str, metadata_file: str = "METADATA") -> None:
    info = site / name
    info.mkdir(parents=True)
    (info / metadata_file).write_text(
        f"Metadata-Version: 2.1\nName: sglang\nVersion: {version}\n\nversion: not a header\n",
        encoding="utf-8",
    )


def _site_layouts(tmp_path: Path) -> dict[str, list[str]]:
    wheel = tmp_path / "wheel"
    _dist_info(wheel, "sglang-0.5.14.dist-info", "0.5.14")
    _dist_info(wheel, "sglang_router-0.3.1.dist-info", "0.3.1")
    upper = tmp_path / "upper"
    _dist_info(upper, "SGLang-0.5.10.post1.dist-info", "0.5.10.post1")
    egg = tmp_path / "egg"
    _dist_info(egg, "sglang.egg-info", "0.5.9", metadata_file="PKG-INFO")
    router_only = tmp_path / "router-only"
    _dist_info(router_only, "sglang_router-0.3.1.dist-info", "0.3.1")
    unzipped_egg = tmp_path / "sglang-0.5.10-py3.11.egg"
    _dist_info(unzipped_egg, "EGG-INFO", "0.5.10", metadata_file="PKG-INFO")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = str(tmp_path / "not-there")
    return {
        "wheel": [str(wheel)],
        "upper-case-name": [str(upper)],
        "egg-info": [str(egg)],
        "first-entry-wins": [missing, str(empty), str(upper), str(wheel)],
        "unzipped-egg-before-a-wheel": [str(unzipped_egg), str(wheel)],
        "router-is-another-distribution": [str(router_only)],
        "not-installed": [str(empty), missing],
    }


@pytest.mark.parametrize(
    "layout",
    [
        "wheel",
        "upper-case-name",
        "egg-info",
        "first-entry-wins",
        "unzipped-egg-before-a-wheel",
        "router-is-another-distribution",
        "not-installed",
    ],
)
def test_installed_version_agrees_with_importlib_metadata(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    monkeypatch.setattr(sys, "path", _site_layouts(tmp_path)[layout])
    try:
        expected: str | None = metadata.version("sglang")
    except metadata.PackageNotFoundError:
        expected = None
    assert installed_sglang_version() == expected
    assert (expected is None) == (layout in ("router-is-another-distribution", "not-installed"))


def test_a_cold_target_version_imports_no_importlib_metadata() -> None:
    code = (
        "import sys; from detargs.sglang.version import target_version; target_version(None); "
        "print(sorted(m for m in ('importlib.metadata', 'email', 'sglang') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_an_install_after_a_lookup_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site)])
    assert installed_sglang_version() is None
    _dist_info(site, "sglang-0.5.20.dist-info", "0.5.20")
    later = site.stat().st_mtime_ns + 1_000_000_000
    os.utime(site, ns=(later, later))  # coarse filesystem clocks must not hide the install
    assert installed_sglang_version() == "0.5.20"
