"""Typed device facts: capability, architecture, GPU and device records."""

from __future__ import annotations

import dataclasses
import doctest

import pytest

from detargs import device
from detargs.device import Arch, ComputeCapability, DeviceInfo, GpuInfo, MigInfo
from detargs.errors import DeviceDetectionError
from detargs.testing import fake_device


def _gpu(index: int, capability: str = "9.0", name: str = "NVIDIA H100 80GB HBM3") -> GpuInfo:
    return GpuInfo(index=index, name=name, capability=capability)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("9.0", ComputeCapability(9, 0), id="dotted"),
        pytest.param("10.3", ComputeCapability(10, 3), id="dotted-two-digit-major"),
        pytest.param(" 12.1 ", ComputeCapability(12, 1), id="spaces"),
        pytest.param("sm90", ComputeCapability(9, 0), id="sm90"),
        pytest.param("sm_100a", ComputeCapability(10, 0), id="sm-arch-specific"),
        pytest.param("sm_100f", ComputeCapability(10, 0), id="sm-family"),
        pytest.param("SM121", ComputeCapability(12, 1), id="sm-upper"),
        pytest.param("sm103", ComputeCapability(10, 3), id="sm103"),
    ],
)
def test_capability_parse(text: str, expected: ComputeCapability) -> None:
    assert ComputeCapability.parse(text) == expected


@pytest.mark.parametrize("text", ["9", "nine", "9.0.1", "sm9", "", "sm_"])
def test_capability_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a compute capability"):
        ComputeCapability.parse(text)


def test_capability_str_sm_and_order() -> None:
    assert str(ComputeCapability(9, 0)) == "9.0"
    assert ComputeCapability(12, 1).sm == "sm121"
    assert ComputeCapability(8, 9) < ComputeCapability(9, 0) < ComputeCapability(10, 0)
    assert sorted(
        [ComputeCapability(12, 0), ComputeCapability(10, 3), ComputeCapability(10, 0)]
    ) == [
        ComputeCapability(10, 0),
        ComputeCapability(10, 3),
        ComputeCapability(12, 0),
    ]


@pytest.mark.parametrize(
    ("capability", "arch"),
    [
        pytest.param((7, 0), Arch.VOLTA, id="7.0-v100"),
        pytest.param((7, 2), Arch.VOLTA, id="7.2-xavier"),
        pytest.param((7, 5), Arch.TURING, id="7.5-t4"),
        pytest.param((8, 0), Arch.AMPERE, id="8.0-a100"),
        pytest.param((8, 6), Arch.AMPERE, id="8.6-a10"),
        pytest.param((8, 7), Arch.AMPERE, id="8.7-orin"),
        pytest.param((8, 9), Arch.ADA, id="8.9-l40s"),
        pytest.param((9, 0), Arch.HOPPER, id="9.0-h100"),
        pytest.param((10, 0), Arch.BLACKWELL, id="10.0-b200"),
        pytest.param((10, 3), Arch.BLACKWELL, id="10.3-b300"),
        pytest.param((11, 0), Arch.BLACKWELL, id="11.0-thor"),
        pytest.param((12, 0), Arch.BLACKWELL, id="12.0-rtx5090"),
        pytest.param((12, 1), Arch.BLACKWELL, id="12.1-gb10"),
        pytest.param((6, 1), Arch.UNKNOWN, id="6.1-pascal-too-old"),
        pytest.param((8, 8), Arch.UNKNOWN, id="8.8-no-such-gpu"),
        pytest.param((13, 0), Arch.UNKNOWN, id="13.0-newer"),
    ],
)
def test_arch_from_capability(capability: tuple[int, int], arch: Arch) -> None:
    assert Arch.from_capability(ComputeCapability(*capability)) is arch


def test_blackwell_variants_stay_distinguishable() -> None:
    sms = {_gpu(0, cc).capability.sm for cc in ("10.0", "10.3", "11.0", "12.0", "12.1")}
    assert sms == {"sm100", "sm103", "sm110", "sm120", "sm121"}
    assert {_gpu(0, cc).arch for cc in ("10.0", "12.1")} == {Arch.BLACKWELL}


def test_gpu_info_derives_and_checks_arch() -> None:
    assert _gpu(0, "8.9").arch is Arch.ADA
    with pytest.raises(ValueError, match="contradicts capability"):
        GpuInfo(index=0, name="x", capability=ComputeCapability(9, 0), arch=Arch.ADA)


def test_gpu_info_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _gpu(0).name = "other"  # type: ignore[misc]


def test_launch_gpu_on_identical_gpus() -> None:
    info = DeviceInfo(gpus=(_gpu(0), _gpu(1)), source="fake")
    assert info.count == 2
    assert info.launch_gpu() == info.gpus[0]
    assert info.launch_gpu(1) == info.gpus[1]


def test_launch_gpu_same_capability_different_names_is_fine() -> None:
    info = DeviceInfo(
        gpus=(_gpu(0, name="NVIDIA H100"), _gpu(1, name="NVIDIA H200")), source="fake"
    )
    assert info.launch_gpu().name == "NVIDIA H100"


def test_launch_gpu_on_mixed_gpus_needs_an_index() -> None:
    info = DeviceInfo(gpus=(_gpu(0, "9.0"), _gpu(1, "8.9", "NVIDIA L40S")), source="nvml")
    with pytest.raises(DeviceDetectionError, match="pass an index") as raised:
        info.launch_gpu()
    assert "CUDA_VISIBLE_DEVICES" in str(raised.value)
    assert "1: NVIDIA L40S (8.9, sm89, ada)" in str(raised.value)
    assert info.launch_gpu(1).arch is Arch.ADA


@pytest.mark.parametrize("index", [-1, 2])
def test_launch_gpu_index_out_of_range(index: int) -> None:
    with pytest.raises(DeviceDetectionError, match="out of range"):
        DeviceInfo(gpus=(_gpu(0), _gpu(1)), source="fake").launch_gpu(index)


def test_launch_gpu_with_nothing_visible_says_why() -> None:
    info = DeviceInfo(
        gpus=(),
        source="nvml",
        empty_reason="CUDA_VISIBLE_DEVICES is set to an empty string, which hides every GPU",
    )
    with pytest.raises(DeviceDetectionError, match="CUDA_VISIBLE_DEVICES is set to an empty") as e:
        info.launch_gpu()
    assert "device='h100'" in str(e.value)


def test_gpus_must_be_in_cuda_order() -> None:
    with pytest.raises(ValueError, match="CUDA order"):
        DeviceInfo(gpus=(_gpu(1),), source="fake")


def test_json_round_trip_keeps_everything() -> None:
    mig = MigInfo(enabled=True, parent_uuid="GPU-1", gpu_instance_id=1, compute_instance_id=0)
    info = DeviceInfo(
        gpus=(
            GpuInfo(
                index=0,
                nvml_index=3,
                name="NVIDIA A100-SXM4-80GB MIG 3g.40gb",
                uuid="MIG-1",
                capability=ComputeCapability(8, 0),
                arch=Arch.AMPERE,
                memory_total_bytes=None,
                mig=mig,
                pci_bus_id="00000000:18:00.0",
            ),
        ),
        driver_version="580.159.04",
        cuda_driver_version="13.0",
        source="nvml",
        cuda_visible_devices="MIG-1",
        warnings=("an assumption",),
    )
    again = DeviceInfo.from_json(info.to_json())
    assert again == info
    assert isinstance(again.gpus[0].capability, ComputeCapability)
    assert again.gpus[0].mig is not None
    assert again.gpus[0].mig.is_instance


def test_hand_written_json_may_omit_arch_and_use_a_string_capability() -> None:
    text = '{"gpus": [{"index": 0, "name": "NVIDIA B200", "capability": "10.0"}], "source": "file"}'
    assert DeviceInfo.from_json(text).launch_gpu().arch is Arch.BLACKWELL


def test_unknown_json_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="gpu_count: Unexpected keyword argument"):
        DeviceInfo.from_json('{"gpus": [], "source": "file", "gpu_count": 1}')


def test_describe_is_a_table() -> None:
    text = fake_device("h100", count=2).describe()
    lines = text.splitlines()
    assert lines[0] == "2 GPUs visible (source: fake, driver 580.159.04, CUDA 13.0)"
    assert lines[1].split() == [
        "cuda",
        "nvml",
        "name",
        "capability",
        "arch",
        "memory",
        "mig",
        "pci",
        "bus",
        "id",
        "uuid",
    ]
    assert "NVIDIA H100 80GB HBM3" in lines[2]
    assert "9.0 (sm90)" in lines[3]
    assert "79.6 GiB" in lines[2]


def test_describe_shows_warnings_and_empty_reason() -> None:
    info = DeviceInfo(gpus=(), source="nvml", empty_reason="nothing", warnings=("careful",))
    assert info.describe() == "No GPU visible (source: nvml): nothing\nwarning: careful"


def test_module_doctests() -> None:
    assert doctest.testmod(device).failed == 0


@pytest.mark.parametrize(
    ("capability", "arch", "target"),
    [
        pytest.param("9.0", Arch.CDNA2, "gfx90a", id="gfx90a"),
        pytest.param("9.4", Arch.CDNA3, "gfx942", id="gfx942"),
        pytest.param("9.5", Arch.CDNA4, "gfx950", id="gfx950"),
    ],
)
def test_amd_capability_reads_as_a_gfx_target(capability: str, arch: Arch, target: str) -> None:
    gpu = GpuInfo(
        index=0, name="AMD Instinct", capability=ComputeCapability.parse(capability), vendor="amd"
    )
    assert (gpu.arch, gpu.target) == (arch, target)
    nvidia = GpuInfo(index=0, name="NVIDIA", capability=ComputeCapability.parse(capability))
    assert nvidia.arch is Arch.HOPPER


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param({"mig": {"enabled": True}}, "GpuInfo.mig must be MigInfo or None", id="mig"),
        pytest.param(
            {"memory_total_bytes": "80"}, "memory_total_bytes must be int or None", id="memory"
        ),
        pytest.param({"nvml_index": "1"}, "nvml_index must be int or None", id="nvml-index"),
        pytest.param({"index": True}, "GpuInfo.index must be int", id="bool-index"),
        pytest.param({"name": None}, "GpuInfo.name must be str", id="name"),
        pytest.param({"capability": "nine"}, "not a compute capability", id="capability"),
    ],
)
def test_a_gpu_built_in_code_is_checked_where_it_is_built(
    given: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"index": 0, "name": "NVIDIA H100", "capability": "9.0", **given}
    with pytest.raises(ValueError, match=message):
        GpuInfo(**fields)  # type: ignore[arg-type]


def test_arch_none_is_derived_like_an_omitted_arch() -> None:
    assert GpuInfo(index=0, name="x", capability="10.0", arch=None).arch is Arch.BLACKWELL  # type: ignore[arg-type]
