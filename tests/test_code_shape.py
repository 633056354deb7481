"""The source stays readable by the measures anyone can rerun: ``radon mi src -s`` ranks
every module A, and ``radon cc src -s -n D`` finds no function above C."""

from __future__ import annotations

from pathlib import Path

import pytest

radon_metrics = pytest.importorskip("radon.metrics", reason="radon is in the test extra")
radon_complexity = pytest.importorskip("radon.complexity", reason="radon is in the test extra")

SOURCES = sorted((Path(__file__).resolve().parent.parent / "src" / "detargs").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_every_module_has_maintainability_rank_a(path: Path) -> None:
    # the figure radon mi -s prints: multi-line strings count as comments
    score = radon_metrics.mi_visit(path.read_text(encoding="utf-8"), multi=True)
    assert radon_metrics.mi_rank(score) == "A", f"{path.name}: maintainability {score:.1f}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_no_function_is_more_complex_than_rank_c(path: Path) -> None:
    blocks = radon_complexity.cc_visit(path.read_text(encoding="utf-8"))
    functions = [block for block in blocks if not hasattr(block, "methods")]
    methods = [method for block in blocks for method in getattr(block, "methods", ())]
    too_complex = [
        f"{block.name} ({block.complexity})"
        for block in (*functions, *methods)
        if radon_complexity.cc_rank(block.complexity) not in "ABC"
    ]
    assert too_complex == [], f"{path.name}: split these"
