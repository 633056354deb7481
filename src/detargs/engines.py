"""The serving engines detargs resolves launches for, and the one it uses.

The generic layers (the resolution engine, the plan, the CLI, the fixtures) call the
engine through this module; an engine package (``detargs.sglang``) holds everything that
engine's releases do. A second engine is a sibling package and an entry here.
"""

from __future__ import annotations

from .sglang import ENGINE

__all__ = ["ENGINE"]
