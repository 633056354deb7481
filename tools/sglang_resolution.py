"""Run one SGLang release's own server-args resolution on CPU, with a mocked GPU.

``tools/verify_resolved.py`` proves that SGLang's *parser* accepts what detargs resolves;
this proves what SGLang's *resolution* (``ServerArgs.__post_init__``; from 0.5.19 the hook
pipeline run by ``resolve_once``, read back through ``resolved_view``) makes of it. For
each release, device and origin fixture it resolves the launch with detargs, hands that
argv (and env) to the release's own ``prepare_server_args`` and records the fields SGLang
ends with::

    python3 tools/sglang_resolution.py     # (re)writes tests/fixtures/sglang_resolution.json
    python3 tools/sglang_resolution.py --print-only      # print the table, write nothing
    python3 tools/sglang_resolution.py --releases 0.5.18 --devices b200
    python3 tools/sglang_resolution.py --releases 0.5.23 --devices rtx-pro-6000 \\
        --raw --enable-deterministic-inference --attention-backend fa4   # any argv, no detargs

Heavy (one virtual environment per release with torch and transformers, a few minutes
the first time): run by hand after a rules change; the test of the recorded file
(``tests/test_sglang_resolution.py``) says when.

Environment. Each release gets ``~/.cache/detargs-sgres/<release>`` (``DETARGS_SGRES_CACHE``
moves it): a venv holding torch 2.13.0 (the CPU build on this machine's disk), the
``transformers`` release the sglang wheel pins, the small packages its server-args import
chain needs (``EXTRA_DEPS``), and the sglang wheel itself (``pip install --no-deps``; the
wheel is the one ``tools/_sglang_parser.py`` downloads). Every other module the import
chain reaches for and that is not installed (``sgl_kernel``, ``flashinfer``, ``triton``,
...) is fabricated by ``_sglang_parser``'s last-resort stub finder, so a module that only
has to *exist* does; the record lists which ones were stubbed.

How the GPU is mocked (child side, before sglang is imported; nothing in sglang is patched):

* ``torch.cuda.is_available`` -> True, ``device_count`` -> the profile's GPU count,
  ``current_device`` -> 0, ``is_initialized`` -> False, ``set_device``/``synchronize``/
  ``empty_cache`` -> no-ops;
* ``torch.cuda.get_device_capability`` -> the detargs profile's capability ((9, 0) for h100,
  (10, 0) for b200), ``get_device_name`` -> its NVML name, ``get_device_properties`` -> an
  object with that name, capability, ``total_memory`` (the profile's MiB) and 132/148 SMs,
  ``mem_get_info`` -> (total, total);
* ``torch.version.cuda`` -> ``"12.8"`` on Hopper, ``"13.0"`` on Blackwell (what the
  ``is_sm*_supported`` probes compare against); ``torch.version.hip`` stays None;
* ``pynvml`` is made unimportable, so 0.5.21+'s ``get_device_sm`` (NVML first while
  torch.cuda is uninitialised) takes its documented torch fallback, which is mocked;
* ``nvidia-smi`` is absent from the child's PATH (the tool refuses to run where it is
  not), so the memory probe takes SGLang's own fallback to ``torch.cuda.mem_get_info``
  (mocked). 0.5.19+'s ``runtime_context`` platform probes call the same
  ``is_sm*_supported`` functions, so they see the mocked device.

The model is a directory holding only a tiny ``config.json`` (Llama for the standalone-spec
fixture, DeepSeek-V2 for the MLA one) and no weights; nothing is fetched (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Final

_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "src"))
sys.path.insert(0, str(_ROOT / "tools"))

RECORD: Final = _ROOT / "tests" / "fixtures" / "sglang_resolution.json"
RELEASES: Final = ("0.5.14", "0.5.18", "0.5.23")
DEVICES: Final = ("h100", "b200")
TORCH: Final = "torch==2.13.0"  # the CPU build on this machine's disk; server args need no kernels
# What the server_args import chain needs beyond torch, transformers and msgspec (found by
# running it); everything else missing is stubbed.
EXTRA_DEPS: Final = (
    "msgspec",
    "orjson",
    "pydantic",
    "requests",
    "psutil",
    "pyyaml",
    "pybase64",
    "setproctitle",
    "pyzmq",
    "packaging",
    "pillow",
    "starlette",
    "ipython",
    "aiohttp",
    "dill",
    "openai",
    "partial_json_parser",
    "xgrammar",
    "sentencepiece",
    "compressed-tensors",
    "gguf",
    "einops",
)
# The only modules stubbed: GPU-only packages a CUDA install of sglang has and this CPU venv
# cannot, and torchvision, whose PyPI builds need another torch than the CPU file (sglang
# imports it for JPEG decoding). Anything else missing fails the run: add it to EXTRA_DEPS.
GPU_ONLY: Final = frozenset(
    {
        "sgl_kernel",
        "flashinfer",
        "triton",
        "deep_gemm",
        "deep_ep",
        "flash_mla",
        "cuda",
        "cutlass",
        "nvidia",
        "sglang_kernel",
        "torchvision",
        "torchaudio",
        "torch_memory_saver",
    }
)
CHILD_PATH: Final = "/usr/bin:/bin"
MODEL_PLACEHOLDER: Final = "MODEL"
DRAFT_PLACEHOLDER: Final = "DRAFT"
# The fields recorded from SGLang's final ServerArgs (absent fields are recorded as absent).
FIELDS: Final = (
    "attention_backend",
    "prefill_attention_backend",
    "decode_attention_backend",
    "sampling_backend",
    "disable_radix_cache",
    "disable_cuda_graph",
    "cuda_graph_backend_prefill",
    "cuda_graph_backend_decode",
    "disable_prefill_cuda_graph",
    "disable_custom_all_reduce",
    "enable_torch_symm_mem",
    "page_size",
    "kv_cache_dtype",
)
ENV_PREFIXES: Final = ("NCCL_", "SGLANG_ENABLE_DETERMINISTIC")

LLAMA_CONFIG: Final = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "bfloat16",
    "rope_theta": 10000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}
DEEPSEEK_V2_CONFIG: Final = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 256,
    "intermediate_size": 512,
    "moe_intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
    "kv_lora_rank": 64,
    "q_lora_rank": None,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "scoring_func": "softmax",
    "norm_topk_prob": False,
    "routed_scaling_factor": 1.0,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "bfloat16",
    "rope_theta": 10000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}


def fixtures(release: str) -> dict[str, tuple[list[str], str | None]]:
    """The origin fixtures (argv after ``--model-path``, model architecture for detargs)."""
    from verify_resolved import fixture_argvs

    argvs = fixture_argvs(release)
    spec = [DRAFT_PLACEHOLDER if item == "D" else item for item in argvs["standalone-spec"]]
    return {"standalone-spec": (spec, None), "mla-fp8": (argvs["mla-fp8"], "DeepseekV2ForCausalLM")}


def detargs_launch(
    release: str, device: str, argv: list[str], model_arch: str | None
) -> tuple[list[str], dict[str, str]]:
    """What ``detargs resolve`` hands the launcher today: (argv, env)."""
    from detargs import DetargsWarning, from_argv, resolve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetargsWarning)
        args = from_argv(["--model-path", MODEL_PLACEHOLDER, *argv], release)
        launch = resolve(
            args, device=device, sglang_version=release, model_arch=model_arch, environ={}
        )
    return list(launch.argv), dict(launch.env)


def gpu_spec(device: str) -> dict[str, Any]:
    from detargs.profiles import lookup

    gpu, count = lookup(device)
    major, minor = gpu.capability
    return {
        "key": device,
        "name": gpu.name,
        "capability": [major, minor],
        # NVML reports no memory total on unified-memory parts (DGX Spark): say 120 GiB.
        "memory_mib": gpu.memory_mib or 120 * 1024,
        "count": count or 1,
        "cuda": "12.8" if major < 10 else "13.0",
        "sms": 132 if major < 10 else 148,
    }


# --------------------------------------------------------------------------- environment


def cache_dir() -> Path:
    return Path(os.environ.get("DETARGS_SGRES_CACHE", Path.home() / ".cache" / "detargs-sgres"))


def _pinned_transformers(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode("utf-8")
    found = re.search(r"^Requires-Dist: transformers==([^\s;]+)\s*$", text, re.MULTILINE)
    return f"transformers=={found.group(1)}" if found else "transformers"


def ensure_venv(release: str) -> Path:
    """The venv python of ``release``, built on first use."""
    from _sglang_parser import wheel_path

    venv = cache_dir() / release
    python = venv / "bin" / "python"
    done = venv / ".complete"
    if done.exists():
        return python
    wheel = wheel_path(release)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pin = venv / "constraints.txt"
    pin.write_text(TORCH + "\n")  # nothing may swap the CPU torch for a CUDA build
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        str(pin),
    ]
    subprocess.run([*pip, TORCH, _pinned_transformers(wheel), *EXTRA_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True)
    done.write_text(release)
    return python


def model_dirs(root: Path) -> dict[str, Path]:
    dirs = {}
    for name, config in (("llama", LLAMA_CONFIG), ("deepseek_v2", DEEPSEEK_V2_CONFIG)):
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_text(json.dumps(config), "utf-8")
        dirs[name] = target
    return dirs


def run_sglang(
    release: str, gpu: dict[str, Any], argv: list[str], env: dict[str, str], model_arch: str | None
) -> dict[str, Any]:
    """SGLang's own resolution of ``argv`` (placeholders filled) on the mocked ``gpu``."""
    import shutil

    if shutil.which("nvidia-smi", path=CHILD_PATH):
        raise RuntimeError(
            "nvidia-smi is on this machine: SGLang would read the real card's memory "
            "through it; run this tool where no driver is installed"
        )
    python = ensure_venv(release)
    with tempfile.TemporaryDirectory(prefix="detargs-sgres-") as tmp:
        dirs = model_dirs(Path(tmp))
        model = dirs["deepseek_v2" if model_arch else "llama"]
        places = {MODEL_PLACEHOLDER: str(model), DRAFT_PLACEHOLDER: str(dirs["llama"])}
        filled = [places.get(item, item) for item in argv]
        request = Path(tmp) / "request.json"
        result = Path(tmp) / "result.json"
        request.write_text(
            json.dumps({"argv": filled, "gpu": gpu, "fields": FIELDS, "env_prefixes": ENV_PREFIXES})
        )
        child_env = {
            "PATH": CHILD_PATH,  # no nvidia-smi: SGLang falls back to mem_get_info
            "HOME": tmp,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": "0",
            **({"DETARGS_SGRES_DEBUG": "1"} if os.environ.get("DETARGS_SGRES_DEBUG") else {}),
            **env,
        }
        proc = subprocess.run(
            [
                str(python),
                "-W",
                "ignore",
                str(Path(__file__).resolve()),
                "--child",
                str(request),
                str(result),
            ],
            cwd=tmp,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if os.environ.get("DETARGS_SGRES_DEBUG"):
            print(proc.stderr[-6000:], file=sys.stderr)
        if not result.exists():
            raise RuntimeError(
                f"sglang=={release} resolution crashed (exit {proc.returncode}):\n"
                f"{proc.stderr[-4000:]}"
            )
        data: dict[str, Any] = json.loads(result.read_text())
        data["log"] = _relevant_log(proc.stderr)
        return data


def _relevant_log(stderr: str) -> list[str]:
    """SGLang's log lines about deterministic inference or CUDA graphs, timestamps dropped."""
    lines = (re.sub(r"^\[[^]]*\]\s*", "", line).strip() for line in stderr.splitlines())
    keep = [line for line in lines if "determinis" in line.lower() or "graph" in line.lower()]
    return list(dict.fromkeys(keep))[:20]


# --------------------------------------------------------------------------- child side


def _mock_gpu(gpu: dict[str, Any]) -> None:
    import importlib
    import types

    torch = importlib.import_module("torch")
    major, minor = gpu["capability"]
    total = gpu["memory_mib"] * 2**20
    props = types.SimpleNamespace(
        name=gpu["name"],
        major=major,
        minor=minor,
        total_memory=total,
        multi_processor_count=gpu["sms"],
        is_integrated=False,
        uuid="GPU-detargs-mock",
        L2_cache_size=50 * 2**20,
        warp_size=32,
    )
    cuda = torch.cuda
    cuda.is_available = lambda: True
    cuda.device_count = lambda: gpu["count"]
    cuda.current_device = lambda: 0
    cuda.is_initialized = lambda: False
    cuda.get_device_capability = lambda device=None: (major, minor)
    cuda.get_device_name = lambda device=None: gpu["name"]
    cuda.get_device_properties = lambda device=None: props
    cuda.mem_get_info = lambda device=None: (total, total)
    cuda.set_device = lambda device: None
    cuda.synchronize = lambda device=None: None
    cuda.empty_cache = lambda: None
    torch.version.cuda = gpu["cuda"]
    sys.modules["pynvml"] = None  # type: ignore[assignment]  # import fails: torch fallback


def _plain(value: Any) -> Any:
    import enum

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _graph_config(server_args: Any) -> dict[str, Any] | None:
    config = getattr(server_args, "cuda_graph_config", None)
    if config is None or isinstance(config, dict):
        return None if config is None else _plain(config)
    phases = {}
    for phase in ("decode", "prefill"):
        part = getattr(config, phase, None)
        if part is not None:
            phases[phase] = {"backend": _plain(getattr(part, "backend", None))}
    return phases


def _child(request_file: str, result_file: str) -> int:
    import contextlib
    import importlib
    import io
    import logging

    request = json.loads(Path(request_file).read_text())
    _mock_gpu(request["gpu"])
    from _sglang_parser import _StubFinder, is_stub

    class MissingOnly(_StubFinder):
        """Stubs whole missing packages only: a real package's missing part stays missing."""

        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            name = fullname.split(".", 1)[0]
            top = sys.modules.get(name)
            if name not in GPU_ONLY or (top is not None and not is_stub(top)):
                return None
            return super().find_spec(fullname, path, target)

    finder = MissingOnly()
    sys.meta_path.append(finder)
    logs = io.StringIO()
    # prepare_server_args re-does logging.basicConfig(force=True) onto stderr; the parent
    # keeps SGLang's lines about deterministic inference and CUDA graphs from there.
    logging.basicConfig(stream=logs, level=logging.WARNING, force=True)
    warnings.simplefilter("ignore")
    result: dict[str, Any] = {}
    try:
        with contextlib.redirect_stdout(logs):
            server_args_module = importlib.import_module("sglang.srt.server_args")
            server_args = server_args_module.prepare_server_args(list(request["argv"]))
            view = server_args
            if hasattr(server_args, "resolve_once"):
                # 0.5.19+: construction leaves the record unresolved; launchers call
                # resolve_once(), and what it decided is read through resolved_view().
                server_args.resolve_once()
                overrides = importlib.import_module("sglang.srt.arg_groups.model_override_base")
                view = overrides.resolved_view(server_args)
        fields = {
            name: _plain(getattr(view, name)) for name in request["fields"] if hasattr(view, name)
        }
        fields["cuda_graph_config"] = _graph_config(view)
        result = {"ok": True, "fields": fields}
    except BaseException as error:  # recorded, not hidden: SGLang refused (SystemExit too)
        import traceback

        result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:600]}
        if os.environ.get("DETARGS_SGRES_DEBUG"):
            traceback.print_exc()
    result["env"] = {
        k: v for k, v in sorted(os.environ.items()) if k.startswith(tuple(request["env_prefixes"]))
    }
    result["stubbed"] = sorted(finder.stubbed)
    Path(result_file).write_text(json.dumps(result, sort_keys=True))
    return 0


# --------------------------------------------------------------------------- parent side


def prefill_backend(fields: dict[str, Any]) -> Any:
    """The prefill CUDA graph backend SGLang ends with, whichever release spelled it."""
    config = fields.get("cuda_graph_config") or {}
    return (config.get("prefill") or {}).get("backend", fields.get("cuda_graph_backend_prefill"))


def _row(case: dict[str, Any]) -> str:
    outcome = case["sglang"]
    fields = outcome.get("fields", {})
    verdict = "" if outcome["ok"] else "ERROR " + outcome["error"][:120]
    return (
        f"{case['release']:7} {case['device']:5} {case['fixture']:15} {case['variant']:25} "
        f"prefill={prefill_backend(fields)!s:9} attn={fields.get('attention_backend')!s:7} "
        f"sampling={fields.get('sampling_backend')} {verdict}"
    )


def record(releases: list[str], devices: list[str]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for release in releases:
        for device in devices:
            gpu = gpu_spec(device)
            for name, (argv, model_arch) in fixtures(release).items():
                launch_argv, env = detargs_launch(release, device, argv, model_arch)
                variants = [("detargs", launch_argv)]
                if "--cuda-graph-backend-prefill" not in launch_argv:
                    # Today's rules leave the prefill graph alone from 0.5.15: show what the
                    # release makes of the fix, too.
                    fixed = [*launch_argv, "--cuda-graph-backend-prefill", "disabled"]
                    variants.append(("detargs+prefill-disabled", fixed))
                for variant, sg_argv in variants:
                    outcome = run_sglang(release, gpu, sg_argv, env, model_arch)
                    cases.append(
                        {
                            "release": release,
                            "device": device,
                            "fixture": name,
                            "model_arch": model_arch,
                            "variant": variant,
                            "fixture_argv": argv,
                            "argv": sg_argv,
                            "env": env,
                            "sglang": outcome,
                        }
                    )
                    print(_row(cases[-1]), flush=True)
    return cases


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "--child":
        return _child(args[1], args[2])
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", nargs="*", default=list(RELEASES))
    parser.add_argument("--devices", nargs="*", default=list(DEVICES))
    parser.add_argument("--out", type=Path, default=RECORD)
    parser.add_argument("--print-only", action="store_true")
    parser.add_argument("--mla", action="store_true", help="with --raw: a DeepSeek-V2 model")
    parser.add_argument(
        "--raw",
        nargs=argparse.REMAINDER,
        default=None,
        help="hand this argv (after --model-path MODEL) to SGLang as given, without detargs",
    )
    options = parser.parse_args(args)
    if options.raw is not None:
        arch = "DeepseekV2ForCausalLM" if options.mla else None
        for release in options.releases:
            for device in options.devices:
                raw = ["--model-path", MODEL_PLACEHOLDER, *options.raw]
                outcome = run_sglang(release, gpu_spec(device), raw, {}, arch)
                print(release, device, json.dumps(outcome, sort_keys=True))
        return 0
    cases = record(options.releases, options.devices)
    if not options.print_only:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"tool": "tools/sglang_resolution.py", "torch": TORCH, "cases": cases}
        options.out.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", "utf-8")
        print(f"wrote {len(cases)} cases to {options.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
