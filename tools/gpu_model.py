"""A random-weight Llama of any depth, for ``tools/gpu_check_run.sh`` (on the GPU machine).

::

    python3 tools/gpu_model.py SOURCE_DIR OUT_DIR --layers 8

``SOURCE_DIR`` holds the recipe's tokenizer and ``config.json``
(``.gpu/tiny-llama``, see ../shared/gpu-sglang/README.md). They are copied to
``OUT_DIR``, ``num_hidden_layers`` is set to ``--layers``, and bf16 weights are drawn
N(0, 0.05) from a seeded ``torch.Generator`` in a fixed order, with the shapes the
config gives, so the same torch writes the same bytes. Random weights keep the logits
near uniform: greedy decoding then flips on a last-bit difference, which is what a
determinism check needs. Needs torch and safetensors only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    options = parser.parse_args()

    import torch
    from safetensors.torch import save_file

    shutil.copytree(options.source, options.out, dirs_exist_ok=True)
    config_path = options.out / "config.json"
    config: dict[str, Any] = json.loads(config_path.read_text())
    config["num_hidden_layers"] = options.layers
    config_path.write_text(json.dumps(config, indent=1))
    vocab, hidden = config["vocab_size"], config["hidden_size"]
    inner, heads = config["intermediate_size"], config["num_attention_heads"]
    kv_heads, head_dim = config["num_key_value_heads"], config["head_dim"]

    generator = torch.Generator().manual_seed(options.seed)

    def draw(*shape: int) -> Any:
        values = torch.randn(*shape, generator=generator, dtype=torch.float32) * 0.05
        return values.to(torch.bfloat16)

    def ones(size: int) -> Any:
        return torch.ones(size, dtype=torch.bfloat16)

    weights = {"model.embed_tokens.weight": draw(vocab, hidden)}
    for layer in range(options.layers):
        prefix = f"model.layers.{layer}."
        weights[prefix + "input_layernorm.weight"] = ones(hidden)
        weights[prefix + "post_attention_layernorm.weight"] = ones(hidden)
        weights[prefix + "self_attn.q_proj.weight"] = draw(heads * head_dim, hidden)
        weights[prefix + "self_attn.k_proj.weight"] = draw(kv_heads * head_dim, hidden)
        weights[prefix + "self_attn.v_proj.weight"] = draw(kv_heads * head_dim, hidden)
        weights[prefix + "self_attn.o_proj.weight"] = draw(hidden, heads * head_dim)
        weights[prefix + "mlp.gate_proj.weight"] = draw(inner, hidden)
        weights[prefix + "mlp.up_proj.weight"] = draw(inner, hidden)
        weights[prefix + "mlp.down_proj.weight"] = draw(hidden, inner)
    weights["model.norm.weight"] = ones(hidden)
    weights["lm_head.weight"] = draw(vocab, hidden)
    target = options.out / "model.safetensors"
    save_file(weights, str(target), metadata={"format": "pt"})
    digest = hashlib.sha256(target.read_bytes()).hexdigest()[:16]
    print(f"{options.layers}-layer random Llama -> {options.out} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
