"""Resolve the two origin fixtures through the mixin, on whatever GPU this machine has.

    python tools/run_origin_fixtures.py [--sglang-version V]

The device is detected (DETARGS_DEVICE, else NVML), exactly as a fixture on a GPU
runner would get it; the printed argv is what ``get_server_args()`` hands the launcher.
"""

from __future__ import annotations

import argparse
import shlex

from detargs.fixtures import DeterministicServerMixin


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sglang-version", default="0.5.23")
    version = parser.parse_args().sglang_version

    class StandaloneTritonDeterministic(DeterministicServerMixin):
        model = "meta-llama/Llama-3.1-8B-Instruct"
        draft_model = "meta-llama/Llama-3.2-1B-Instruct"
        trust_remote_code = True
        cuda_graph_max_bs = 8
        speculative_algorithm = "STANDALONE"
        speculative_num_steps = 4
        speculative_eagle_topk = 2
        speculative_num_draft_tokens = 7
        mem_fraction_static = 0.7
        attention_backend = "triton"
        enable_deterministic_inference = True
        sglang_version = version

    class MlaFp8Deterministic(DeterministicServerMixin):
        model = "deepseek-ai/DeepSeek-V2-Lite"
        model_arch = "DeepseekV2ForCausalLM"  # a hub id: the family cannot be read offline
        trust_remote_code = True
        kv_cache_dtype = "fp8_e5m2"
        enable_deterministic_inference = True
        sglang_version = version

    for fixture in (StandaloneTritonDeterministic, MlaFp8Deterministic):
        resolution = fixture.get_resolution()
        device = resolution.device
        where = ""
        if device is not None:
            gpu = device.launch_gpu()
            where = f"{gpu.name} ({gpu.target}, source {device.source})"
        print(f"{fixture.__name__} on {where}, SGLang {resolution.sglang_version}")
        print(f"  other_args = {shlex.join(fixture.get_server_args())}")
        print(f"  env        = {fixture.get_server_env()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
