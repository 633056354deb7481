"""Built-in named GPUs for resolving without the GPU at hand."""

from __future__ import annotations

import doctest

import pytest

from detargs import profiles
from detargs.device import Arch, ComputeCapability
from detargs.errors import DeviceDetectionError
from detargs.profiles import PROFILES, lookup, profile, profile_names

MIB = 2**20


@pytest.mark.parametrize(
    ("name", "gpu_name", "capability", "arch", "memory_mib"),
    [
        pytest.param("h100", "NVIDIA H100 80GB HBM3", (9, 0), Arch.HOPPER, 81559, id="h100"),
        pytest.param("h200", "NVIDIA H200", (9, 0), Arch.HOPPER, 143771, id="h200"),
        pytest.param("gh200", "NVIDIA GH200 480GB", (9, 0), Arch.HOPPER, 97871, id="gh200"),
        pytest.param("b200", "NVIDIA B200", (10, 0), Arch.BLACKWELL, 183359, id="b200"),
        pytest.param("gb200", "NVIDIA GB200", (10, 0), Arch.BLACKWELL, 189471, id="gb200"),
        pytest.param("b300", "NVIDIA B300 SXM6 AC", (10, 3), Arch.BLACKWELL, 275040, id="b300"),
        pytest.param(
            "rtx-pro-6000",
            "NVIDIA RTX PRO 6000 Blackwell Server Edition",
            (12, 0),
            Arch.BLACKWELL,
            97887,
            id="rtx-pro-6000",
        ),
        pytest.param(
            "rtx-5090", "NVIDIA GeForce RTX 5090", (12, 0), Arch.BLACKWELL, 32607, id="rtx-5090"
        ),
        pytest.param("dgx-spark", "NVIDIA GB10", (12, 1), Arch.BLACKWELL, None, id="dgx-spark"),
        pytest.param("gb10", "NVIDIA GB10", (12, 1), Arch.BLACKWELL, None, id="gb10-alias"),
        pytest.param("a100", "NVIDIA A100-SXM4-80GB", (8, 0), Arch.AMPERE, 81920, id="a100"),
        pytest.param("l40s", "NVIDIA L40S", (8, 9), Arch.ADA, 46068, id="l40s"),
        pytest.param("l4", "NVIDIA L4", (8, 9), Arch.ADA, 23034, id="l4"),
        pytest.param("rtx-4090", "NVIDIA GeForce RTX 4090", (8, 9), Arch.ADA, 24564, id="rtx-4090"),
        pytest.param("a10", "NVIDIA A10", (8, 6), Arch.AMPERE, 23028, id="a10"),
        pytest.param("t4", "Tesla T4", (7, 5), Arch.TURING, 15360, id="t4"),
        pytest.param("v100", "Tesla V100-SXM2-32GB", (7, 0), Arch.VOLTA, 32768, id="v100"),
        pytest.param("h20", "NVIDIA H20", (9, 0), Arch.HOPPER, 97871, id="h20"),
    ],
)
def test_profile_facts(
    name: str, gpu_name: str, capability: tuple[int, int], arch: Arch, memory_mib: int | None
) -> None:
    info = profile(name)
    gpu = info.launch_gpu()
    assert info.source == "profile"
    assert (gpu.name, gpu.capability, gpu.arch) == (gpu_name, ComputeCapability(*capability), arch)
    assert gpu.memory_total_bytes == (None if memory_mib is None else memory_mib * MIB)


def test_profiles_carry_no_machine_specific_identity() -> None:
    for name in profile_names():
        info = profile(name, count=2)
        assert info.driver_version is None
        assert info.cuda_driver_version is None
        for gpu in info.gpus:
            assert (gpu.uuid, gpu.pci_bus_id, gpu.nvml_index) == (None, None, None)


def test_every_profile_has_a_known_arch_and_unique_names() -> None:
    names = [n for entry in PROFILES for n in (entry.key, *entry.aliases)]
    assert len(names) == len(set(names))
    assert all(entry.arch is not Arch.UNKNOWN for entry in PROFILES)
    assert profile_names()[0] == PROFILES[0].key


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        pytest.param("h100", None, 1, id="default-one"),
        pytest.param("h100x8", None, 8, id="suffix"),
        pytest.param("H100X8", None, 8, id="suffix-upper"),
        pytest.param("h100 x 4", None, 4, id="suffix-spaced"),
        pytest.param("h100*2", None, 2, id="suffix-star"),
        pytest.param("rtx-pro-6000x4", None, 4, id="suffix-after-digits"),
        pytest.param("h100", 4, 4, id="argument"),
        pytest.param("h100x4", 4, 4, id="both-agree"),
        pytest.param("b200", 64, 64, id="max"),
    ],
)
def test_count(spec: str, count: int | None, expected: int) -> None:
    info = profile(spec, count=count)
    assert info.count == expected
    assert [gpu.index for gpu in info.gpus] == list(range(expected))


@pytest.mark.parametrize(
    ("spec", "count", "message"),
    [
        pytest.param("h100x4", 2, "give the count once", id="both-disagree"),
        pytest.param("h100", 0, "between 1 and 64", id="zero"),
        pytest.param("h100x65", None, "between 1 and 64", id="too-many"),
    ],
)
def test_bad_count(spec: str, count: int | None, message: str) -> None:
    with pytest.raises(DeviceDetectionError, match=message):
        profile(spec, count=count)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        pytest.param("NVIDIA H200", "h200", id="nvidia-prefix"),
        pytest.param("RTX_PRO_6000", "rtx-pro-6000", id="underscores"),
        pytest.param("rtx pro 6000", "rtx-pro-6000", id="spaces"),
        pytest.param("spark", "dgx-spark", id="alias"),
        pytest.param(" L40S ", "l40s", id="case-and-padding"),
    ],
)
def test_names_are_normalised(spec: str, key: str) -> None:
    assert lookup(spec)[0].key == key


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        pytest.param("h1000", "did you mean h100", id="typo"),
        pytest.param("b20", "did you mean b200", id="short"),
        pytest.param("l40x2", "did you mean l40s", id="typo-with-count"),
    ],
)
def test_unknown_name_suggests_and_lists(spec: str, suggestion: str) -> None:
    with pytest.raises(DeviceDetectionError) as raised:
        profile(spec)
    message = str(raised.value)
    assert suggestion in message
    assert "Known devices: b300, gb300, b200" in message
    assert "h100x8" in message


def test_unknown_name_without_close_match_still_lists() -> None:
    with pytest.raises(DeviceDetectionError, match="Known devices") as raised:
        profile("hopper")
    assert "did you mean" not in str(raised.value)


def test_module_doctests() -> None:
    assert doctest.testmod(profiles).failed == 0
