"""Shared fixtures: the origin MLA test's model directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def deepseek_v2_lite(tmp_path: Path) -> Path:
    """A local model directory whose config.json looks like DeepSeek-V2-Lite's."""
    model = tmp_path / "DeepSeek-V2-Lite"
    model.mkdir()
    config = {
        "architectures": ["DeepseekV2ForCausalLM"],
        "kv_lora_rank": 512,
        "q_lora_rank": None,
        "qk_rope_head_dim": 64,
        "n_routed_experts": 64,
    }
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return model


# --- hypothesis profiles --------------------------------------------------------------
# "ci" (the default) keeps every property file fast on a 2-core CI machine; "long" is
# for a soak run: pytest tests/test_properties.py --hypothesis-profile=long
# (10,000 cases of each property). The plugin's --hypothesis-profile is applied after
# this file is imported, so it wins; "ci" is loaded only when nothing else was chosen.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
if settings.get_current_profile_name() == "default":
    settings.load_profile("ci")

# When a property fails, hypothesis writes a patch with libcst, whose import warns
# (DeprecationWarning from mypy_extensions.TypedDict); under filterwarnings=error that
# crashes the session with INTERNALERROR instead of reporting the failing example.
# Import it once here, with that warning ignored, so the failure is reported.
import contextlib  # noqa: E402
import warnings  # noqa: E402

# without libcst, hypothesis skips the patch and this import fails harmlessly
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401
