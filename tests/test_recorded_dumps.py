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
        pytest.param(
            "h100-real.json",
            "NVIDIA H100 80GB HBM3",
            "GPU-76f435df-ed30-2384-396a-85f4e113dcf1",
            81559,
            "h100",
            id="h100",
        ),
        pytest.param(
            "h200-real.json",
            "NVIDIA H200",
            "GPU-0ce58777-4a0d-e057-b354-2b640cdd9445",
            143771,
            "h200",
            id="h200",
        ),
        pytest.param(
            "h200-b-real.json",
            "NVIDIA H200",
            "GPU-a7d8f6e5-437c-9b3b-a5b1-94e27ea65234",
            143771,
            "h200",
            id="h200-b",
        ),
        pytest.param(
            "h200-c-real.json",
            "NVIDIA H200",
            "GPU-1edee708-dd0a-0f87-072f-1c0491f52727",
            143771,
            "h200",
            id="h200-c",
        ),
    ],
)
def test_recorded_dump_matches_nvidia_smi_and_the_profile(
    dump: str, name: str, uuid: str, memory_mib: int, profile_name: str
) -> None:
    info = probe(environ={}, nvml=FakeNvml.from_dump(DUMPS / dump))
    gpu = info.launch_gpu()
    assert (gpu.name, gpu.uuid, gpu.capability, gpu.arch) == (
        name,
        uuid,
        ComputeCapability(9, 0),
        Arch.HOPPER,
    )
    assert gpu.memory_total_bytes is not None
    assert gpu.memory_total_bytes // 2**20 == memory_mib
    assert (info.driver_version, info.cuda_driver_version) == ("580.159.04", "13.0")
    known = profile(profile_name).launch_gpu()
    assert (known.name, known.capability, known.memory_total_bytes) == (
        gpu.name,
        gpu.capability,
        memory_mib * 2**20,
    )


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


_FIRST = "00000000:00:06.0"
_SECOND = "00000000:00:07.0"


@pytest.mark.parametrize(
    ("cvd", "order", "buses"),
    [
        pytest.param(None, None, [_FIRST, _SECOND], id="unset"),
        pytest.param("1,0", None, [_SECOND, _FIRST], id="reversed"),
        pytest.param("1", None, [_SECOND], id="second-only"),
        pytest.param("0,2,1", None, [_FIRST], id="stops-at-out-of-range"),
        pytest.param("GPU-d619e64a", None, [_SECOND], id="second-uuid-prefix"),
        pytest.param(
            "GPU-d619e64a-21a8-6f20-6023-c64720467009,GPU-9bb6070c-cb81-71bd-e6b8-6ea34a637281",
            None,
            [_SECOND, _FIRST],
            id="uuids-reversed",
        ),
        pytest.param("GPU-", None, [], id="ambiguous-prefix"),
        pytest.param(None, "PCI_BUS_ID", [_FIRST, _SECOND], id="pci-bus-order"),
        pytest.param("1,0", "PCI_BUS_ID", [_SECOND, _FIRST], id="reversed-pci-bus-order"),
    ],
)
def test_recorded_two_gpu_machine_orders_devices_as_its_driver_did(
    cvd: str | None, order: str | None, buses: list[str]
) -> None:
    # each expected list is what cuInit + cuDeviceGetPCIBusId gave on that 2 x H200 machine
    environ = {
        name: value
        for name, value in (("CUDA_VISIBLE_DEVICES", cvd), ("CUDA_DEVICE_ORDER", order))
        if value is not None
    }
    info = probe(environ=environ, nvml=FakeNvml.from_dump(DUMPS / "h200x2-real.json"))
    assert [gpu.pci_bus_id for gpu in info.gpus] == buses
    # an entry that cuts the list short is said; a list read whole is not
    assert bool(info.warnings) is (cvd == "0,2,1")
    assert [gpu.index for gpu in info.gpus] == list(range(len(buses)))
