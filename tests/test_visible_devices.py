"""CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER, replayed the way the CUDA driver applies them.

Rows marked [H200] were measured with cuInit + cuDeviceGetCount on one H200 (driver
580.159.04); the others follow the CUDA Programming Guide's rules.
"""

from __future__ import annotations

import doctest
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detargs import _visible
from detargs._visible import PhysicalGpu, Visibility, visible_devices
from detargs.device import ComputeCapability
from detargs.errors import DeviceDetectionError
from detargs.nvml import probe
from detargs.testing import FakeMigDevice, FakeNvml, fake_gpu

HOPPER = ComputeCapability(9, 0)
ADA = ComputeCapability(8, 9)
AMPERE = ComputeCapability(8, 0)

# The H200 the reference table was measured on (its real UUID).
H200_UUID = "GPU-955f00aa-396e-9499-6579-17a18a6a2700"
H200 = (PhysicalGpu(0, H200_UUID, HOPPER, "00000000:00:06.0"),)

# Four identical GPUs; the first two share the UUID prefix "GPU-aaaa".
FOUR = (
    PhysicalGpu(0, "GPU-aaaa1111-0000-0000-0000-000000000000", HOPPER, "00000000:18:00.0"),
    PhysicalGpu(1, "GPU-aaaa2222-0000-0000-0000-000000000000", HOPPER, "00000000:2A:00.0"),
    PhysicalGpu(2, "GPU-bbbb3333-0000-0000-0000-000000000000", HOPPER, "00000000:3A:00.0"),
    PhysicalGpu(3, "GPU-cccc4444-0000-0000-0000-000000000000", HOPPER, "00000000:AB:00.0"),
)

# nvidia-smi order: L40S, H100, L40S. FASTEST_FIRST (as emulated) puts the H100 first.
MIXED = (
    PhysicalGpu(0, "GPU-11110000-0000-0000-0000-000000000000", ADA, "00000000:18:00.0"),
    PhysicalGpu(1, "GPU-22220000-0000-0000-0000-000000000000", HOPPER, "00000000:2A:00.0"),
    PhysicalGpu(2, "GPU-33330000-0000-0000-0000-000000000000", ADA, "00000000:3A:00.0"),
)

# NVML indices that are not in PCI order (rare, but NVML promises nothing).
SHUFFLED_PCI = (
    PhysicalGpu(0, "GPU-44440000-0000-0000-0000-000000000000", HOPPER, "00000000:9A:00.0"),
    PhysicalGpu(1, "GPU-55550000-0000-0000-0000-000000000000", HOPPER, "00000000:0a:00.0"),
)

MIG_A = "MIG-a0a0a0a0-0000-0000-0000-000000000001"
MIG_B = "MIG-b0b0b0b0-0000-0000-0000-000000000002"
# GPU 0 in MIG mode with two MIG devices, GPU 1 whole.
MIG = (
    PhysicalGpu(
        0,
        "GPU-66660000-0000-0000-0000-000000000000",
        AMPERE,
        "00000000:18:00.0",
        mig_enabled=True,
        mig_uuids=(MIG_A, MIG_B),
    ),
    PhysicalGpu(1, "GPU-77770000-0000-0000-0000-000000000000", AMPERE, "00000000:2A:00.0"),
)
# GPU 0 in MIG mode without any MIG device created yet.
MIG_EMPTY = (
    PhysicalGpu(0, "GPU-88880000-0000-0000-0000-000000000000", AMPERE, mig_enabled=True),
    PhysicalGpu(1, "GPU-99990000-0000-0000-0000-000000000000", AMPERE),
)


def _labels(visibility: Visibility) -> list[int | str]:
    """A visible entry as its NVML index, or its MIG UUID for a MIG device."""
    return [e.mig_uuid if e.mig_uuid else e.gpu.nvml_index for e in visibility.entries]


def _env(cvd: str | None, order: str | None = None) -> dict[str, str]:
    env = {}
    if cvd is not None:
        env["CUDA_VISIBLE_DEVICES"] = cvd
    if order is not None:
        env["CUDA_DEVICE_ORDER"] = order
    return env


# (gpus, CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, visible, warning substring or None)
CASES = [
    # -- every row measured on the real H200 -------------------------------------------
    pytest.param(H200, None, None, [0], None, id="h200-unset-all"),
    pytest.param(H200, "", None, [], None, id="h200-empty-none"),
    pytest.param(H200, "-1", None, [], None, id="h200-negative-none"),
    pytest.param(H200, "0,-1", None, [0], "is negative", id="h200-0-then-negative"),
    pytest.param(H200, "-1,0", None, [], None, id="h200-negative-first-stops"),
    pytest.param(H200, "1", None, [], None, id="h200-nonexistent-1"),
    pytest.param(H200, "1,0", None, [], None, id="h200-invalid-first-stops"),
    pytest.param(H200, " 0", None, [0], None, id="h200-leading-space"),
    pytest.param(H200, "0 ", None, [0], None, id="h200-trailing-space"),
    pytest.param(H200, "0abc", None, [0], None, id="h200-strtoul-0abc"),
    pytest.param(H200, "+0", None, [0], None, id="h200-strtoul-plus"),
    pytest.param(H200, "abc", None, [], None, id="h200-garbage"),
    pytest.param(H200, "GPU-", None, [], None, id="h200-bare-gpu-prefix"),
    pytest.param(H200, "MIG-x", None, [], None, id="h200-unknown-mig"),
    pytest.param(H200, H200_UUID, None, [0], None, id="h200-full-uuid"),
    pytest.param(H200, "GPU-955f", None, [0], None, id="h200-uuid-prefix"),
    # strtoul reads "955" (out of range): the measured "no device".
    pytest.param(H200, H200_UUID[4:], None, [], None, id="h200-uuid-without-prefix"),
    pytest.param(
        H200, f"{H200_UUID},0", None, [0], "only the entries before", id="h200-uuid-then-int"
    ),
    pytest.param(H200, f"0,{H200_UUID}", None, [0], "switches", id="h200-int-then-uuid"),
    # -- several identical GPUs ----------------------------------------------------------
    pytest.param(FOUR, None, None, [0, 1, 2, 3], None, id="four-unset"),
    pytest.param(FOUR, "1,0", None, [1, 0], None, id="four-reordered"),
    pytest.param(FOUR, "0,2,-1,1", None, [0, 2], "'-1' is negative", id="four-guide-example"),
    pytest.param(FOUR, "3,7,1", None, [3], "out of range", id="four-out-of-range-stops"),
    pytest.param(FOUR, " 1 , 2 ", None, [1, 2], None, id="four-spaces"),
    pytest.param(FOUR, "0,1,", None, [0, 1], None, id="four-trailing-comma-silent"),
    pytest.param(FOUR, "0,,1", None, [0], "empty entry", id="four-empty-entry-stops"),
    pytest.param(FOUR, "0,5,0", None, [0], "out of range", id="four-stop-before-duplicate"),
    pytest.param(FOUR, "GPU-aaaa", None, [], None, id="four-ambiguous-prefix"),
    pytest.param(FOUR, "GPU-cccc,GPU-aaaa", None, [3], "ambiguous", id="four-ambiguous-later"),
    pytest.param(FOUR, "GPU-aaaa2", None, [1], None, id="four-unique-prefix"),
    pytest.param(FOUR, "GPU-bbbb,GPU-aaaa1", None, [2, 0], None, id="four-uuids-ordered"),
    pytest.param(FOUR, "gpu-aaaa1111", None, [], None, id="four-lowercase-prefix-invalid"),
    pytest.param(FOUR, None, "FASTEST_FIRST", [0, 1, 2, 3], None, id="four-fastest-no-warning"),
    # -- CUDA_DEVICE_ORDER on a mixed machine ---------------------------------------------
    pytest.param(MIXED, None, None, [1, 0, 2], "FASTEST_FIRST", id="mixed-default-fastest"),
    pytest.param(MIXED, None, "PCI_BUS_ID", [0, 1, 2], None, id="mixed-pci-bus-id"),
    pytest.param(MIXED, "0", None, [1], "FASTEST_FIRST", id="mixed-0-is-fastest"),
    pytest.param(MIXED, "0", "PCI_BUS_ID", [0], None, id="mixed-0-is-pci-first"),
    pytest.param(MIXED, "2,0", "PCI_BUS_ID", [2, 0], None, id="mixed-pci-reordered"),
    pytest.param(MIXED, "GPU-3333", None, [2], "FASTEST_FIRST", id="mixed-uuid-ignores-order"),
    pytest.param(MIXED, None, "pci_bus_id", [1, 0, 2], "neither", id="mixed-unknown-order"),
    pytest.param(SHUFFLED_PCI, None, "PCI_BUS_ID", [1, 0], None, id="pci-order-by-bus-id"),
    pytest.param(SHUFFLED_PCI, "0", "PCI_BUS_ID", [1], None, id="pci-ordinal-by-bus-id"),
    # -- MIG ----------------------------------------------------------------------------
    pytest.param(MIG, None, None, [MIG_A, 1], None, id="mig-unset-first-instance"),
    pytest.param(MIG, MIG_B, None, [MIG_B], None, id="mig-full-uuid"),
    pytest.param(MIG, "MIG-b0b0", None, [MIG_B], None, id="mig-prefix"),
    pytest.param(MIG, "MIG-", None, [], None, id="mig-bare-prefix"),
    pytest.param(MIG, f"{MIG_A},{MIG_B}", None, [MIG_A], "one MIG device", id="mig-only-one"),
    pytest.param(MIG, "0", None, [MIG_A], None, id="mig-gpu-index-means-first-instance"),
    pytest.param(MIG, "1,0", None, [1, MIG_A], None, id="mig-whole-and-instance"),
    pytest.param(MIG, "GPU-6666", None, [MIG_A], None, id="mig-gpu-uuid-first-instance"),
    pytest.param(MIG, f"GPU-7777,{MIG_B}", None, [1, MIG_B], None, id="mig-gpu-and-mig-uuids"),
    # Switching kinds stops parsing before the repeated GPU is seen.
    pytest.param(MIG, "0,GPU-6666", None, [MIG_A], "switches", id="mig-switch-before-repeat"),
    pytest.param(MIG_EMPTY, None, None, [1], None, id="mig-without-instances-skipped"),
    pytest.param(MIG_EMPTY, "0", None, [], None, id="mig-without-instances-invalid"),
    pytest.param(MIG_EMPTY, "1,0", None, [1], "MIG mode", id="mig-without-instances-stops"),
    pytest.param((), None, None, [], None, id="no-gpu-at-all"),
]


@pytest.mark.parametrize(("gpus", "cvd", "order", "visible", "warning"), CASES)
def test_visible_set(
    gpus: Sequence[PhysicalGpu],
    cvd: str | None,
    order: str | None,
    visible: list[int | str],
    warning: str | None,
) -> None:
    result = visible_devices(gpus, _env(cvd, order))
    assert _labels(result) == visible
    if warning is None:
        assert result.warnings == ()
    else:
        assert any(warning in text for text in result.warnings), result.warnings
    assert (result.empty_reason is None) == bool(visible)


@pytest.mark.parametrize(
    ("gpus", "cvd"),
    [
        pytest.param(H200, "0,0", id="h200-repeated-index"),
        pytest.param(FOUR, "0,1,0", id="four-repeated-later"),
        pytest.param(FOUR, f"{FOUR[2].uuid},GPU-bbbb", id="four-uuid-and-its-prefix"),
        pytest.param(MIG, f"{MIG_A},MIG-a0a0", id="mig-repeated"),
    ],
)
def test_repeated_device_fails_like_cuinit(gpus: Sequence[PhysicalGpu], cvd: str) -> None:
    with pytest.raises(DeviceDetectionError, match=r"twice.*CUDA_ERROR_INVALID_DEVICE"):
        visible_devices(gpus, _env(cvd))


@pytest.mark.parametrize(
    ("gpus", "cvd", "reason"),
    [
        pytest.param(H200, "", "empty string", id="empty"),
        pytest.param(H200, "1", "'1' is out of range (1 GPU: indices 0..0)", id="out-of-range"),
        pytest.param(H200, "-1", "'-1' is negative", id="negative"),
        pytest.param(H200, "abc", "neither an index nor", id="garbage"),
        pytest.param(H200, "GPU-", "no UUID digits", id="bare-prefix"),
        pytest.param(H200, "MIG-x", "matches no MIG device", id="unknown-mig"),
        pytest.param(FOUR, "GPU-aaaa", "ambiguous", id="ambiguous"),
        pytest.param((), None, "NVML lists no GPU", id="no-gpu"),
        pytest.param(MIG_EMPTY[:1], None, "MIG mode without a MIG device", id="mig-empty"),
    ],
)
def test_empty_reason_says_why(gpus: Sequence[PhysicalGpu], cvd: str | None, reason: str) -> None:
    result = visible_devices(gpus, _env(cvd))
    assert result.entries == ()
    assert result.empty_reason is not None
    assert reason in result.empty_reason
    if cvd:
        assert f"CUDA_VISIBLE_DEVICES={cvd!r}" in result.empty_reason


def test_fastest_first_warning_names_the_mapping() -> None:
    (text,) = visible_devices(MIXED, {}).warnings
    assert "cuda 0 = nvidia-smi 1" in text
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in text


def test_probe_applies_cuda_visible_devices_to_the_real_h200_dump() -> None:
    fake = FakeNvml.from_dump(_fixture())
    hidden = probe(environ={"CUDA_VISIBLE_DEVICES": "1"}, nvml=fake)
    assert hidden.gpus == ()
    assert hidden.cuda_visible_devices == "1"
    with pytest.raises(DeviceDetectionError, match=r"CUDA_VISIBLE_DEVICES='1'.*out of range"):
        hidden.launch_gpu()
    shown = probe(environ={"CUDA_VISIBLE_DEVICES": "GPU-0ce5"}, nvml=fake)
    assert [gpu.uuid for gpu in shown.gpus] == ["GPU-0ce58777-4a0d-e057-b354-2b640cdd9445"]


def test_probe_orders_and_warns_on_a_mixed_machine() -> None:
    fake = FakeNvml(gpus=[fake_gpu("l40s", 0), fake_gpu("h100", 1)])
    info = probe(environ={}, nvml=fake)
    assert "FASTEST_FIRST" in info.warnings[0]
    assert [(gpu.index, gpu.nvml_index, gpu.arch.value) for gpu in info.gpus] == [
        (0, 1, "hopper"),
        (1, 0, "ada"),
    ]
    assert len(info.warnings) == 1
    in_pci_order = probe(environ={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=fake)
    assert [gpu.nvml_index for gpu in in_pci_order.gpus] == [0, 1]


def test_probe_exposes_a_mig_instance() -> None:
    instance = FakeMigDevice(MIG_A, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", 40 * 2**30, 2, 0)
    fake = FakeNvml(gpus=[fake_gpu("a100", 0, mig_mode=(1, 1), mig_devices=(instance,))])
    (gpu,) = probe(environ={"CUDA_VISIBLE_DEVICES": "MIG-a0a0"}, nvml=fake).gpus
    assert gpu.uuid == MIG_A
    assert gpu.name.endswith("MIG 3g.40gb")
    assert gpu.memory_total_bytes == 40 * 2**30
    assert gpu.mig is not None
    assert gpu.mig.is_instance
    assert gpu.mig.parent_uuid == fake.gpus[0].uuid
    assert (gpu.mig.gpu_instance_id, gpu.mig.compute_instance_id) == (2, 0)


_ENTRY = st.one_of(
    st.integers(-3, 6).map(str),
    st.sampled_from(["GPU-aaaa", "GPU-bbbb", "GPU-cccc4", "MIG-a0a0", "abc", "", " 1", "+2"]),
)


@given(st.lists(_ENTRY, max_size=6).map(",".join), st.sampled_from([FOUR, MIXED, MIG]))
def test_any_value_gives_distinct_devices_or_the_driver_error(
    cvd: str, gpus: Sequence[PhysicalGpu]
) -> None:
    entries = [entry.strip() for entry in cvd.split(",")]
    try:
        result = visible_devices(gpus, {"CUDA_VISIBLE_DEVICES": cvd})
    except DeviceDetectionError:
        # Only a repeated entry makes the driver fail; it needs at least two entries.
        assert len(entries) >= 2
        return
    keys = [(e.gpu.nvml_index, e.mig_uuid) for e in result.entries]
    assert len(keys) == len(set(keys))
    assert sum(e.mig_uuid is not None for e in result.entries) <= 1


def test_module_doctests() -> None:
    assert doctest.testmod(_visible, optionflags=doctest.ELLIPSIS).failed == 0


def _fixture() -> Mapping[str, object]:
    import json
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "nvml" / "h200-real.json"
    data: Mapping[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data
