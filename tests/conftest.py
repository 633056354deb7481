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
