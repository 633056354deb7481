"""Real NVML dumps, recorded on lent GPU machines with tools/record_nvml.py, replayed.

Each expected row is what nvidia-smi printed on that machine in the same session
(tools/verify_gpu.py), so the probe is checked against the driver's own tool, and the
built-in profile of the same GPU against the real card.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detargs.device import Arch, ComputeCapability
from detargs.nvml import probe
from detargs.profiles import profile
from detargs.testing import FakeNvml

DUMPS = Path(__file__).parent / "fixtures" / "nvml"


@pytest.mark.parametrize(
    ("dump", "name", "uuid", "memory_mib", "profile_name"),
    [
        pytest.param("h100-real.json", "NVIDIA H100 80GB HBM3",
                     "GPU-76f435df-ed30-2384-396a-85f4e113dcf1", 81559, "h100", id="h100"),
        pytest.param("h200-real.json", "NVIDIA H200",
                     "GPU-0ce58777-4a0d-e057-b354-2b640cdd9445", 143771, "h200", id="h200"),
        pytest.param("h200-b-real.json", "NVIDIA H200",
                     "GPU-a7d8f6e5-437c-9b3b-a5b1-94e27ea65234", 143771, "h200", id="h200-b"),
        pytest.param("h200-c-real.json", "NVIDIA H200",
                     "GPU-1edee708-dd0a-0f87-072f-1c0491f52727", 143771, "h200", id="h200-c"),
    ],
)  # fmt: skip
def test_recorded_dump_matches_nvidia_smi_and_the_profile(
    dump: str, name: str, uuid: str, memory_mib: int, profile_name: str
) -> None:
    info = probe(environ={}, nvml=FakeNvml.from_dump(DUMPS / dump))
    gpu = info.launch_gpu()
    assert (gpu.name, gpu.uuid, gpu.capability, gpu.arch) == (
        name, uuid, ComputeCapability(9, 0), Arch.HOPPER,
    )  # fmt: skip
    assert gpu.memory_total_bytes is not None
    assert gpu.memory_total_bytes // 2**20 == memory_mib
    assert (info.driver_version, info.cuda_driver_version) == ("580.159.04", "13.0")
    known = profile(profile_name).launch_gpu()
    assert (known.name, known.capability, known.memory_total_bytes) == (
        gpu.name, gpu.capability, memory_mib * 2**20,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cvd", "count"),
    [
        pytest.param("GPU-76f435df", 1, id="uuid-prefix"),
        pytest.param("76f435df-ed30-2384-396a-85f4e113dcf1", 0, id="uuid-without-prefix"),
        pytest.param("-1", 0, id="minus-one"),
        pytest.param("", 0, id="empty"),
        pytest.param("GPU-", 0, id="bare-gpu-prefix"),
    ],
)
def test_recorded_h100_honours_cuda_visible_devices_as_its_driver_did(cvd: str, count: int) -> None:
    # the counts cuInit + cuDeviceGetCount gave on that H100 (tools/verify_gpu.py)
    fake = FakeNvml.from_dump(DUMPS / "h100-real.json")
    info = probe(environ={"CUDA_VISIBLE_DEVICES": cvd}, nvml=fake)
    assert info.count == count
