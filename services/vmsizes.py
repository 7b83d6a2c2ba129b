"""Azure VM sizes (vCPU, memory GiB) used for a pool's capacity, as AKS sizes its nodes.

Figures from Azure's published size tables for each series.
"""

from __future__ import annotations

from typing import NamedTuple


class VmSize(NamedTuple):
    name: str
    vcpus: int
    memory_gb: float
    gpus: int = 0


_SIZES = [
    # Dv2 (the seed's default Standard_D3_v2)
    VmSize("Standard_D1_v2", 1, 3.5),
    VmSize("Standard_D2_v2", 2, 7),
    VmSize("Standard_D3_v2", 4, 14),
    VmSize("Standard_D4_v2", 8, 28),
    VmSize("Standard_D5_v2", 16, 56),
    VmSize("Standard_D11_v2", 2, 14),
    VmSize("Standard_D12_v2", 4, 28),
    VmSize("Standard_D13_v2", 8, 56),
    VmSize("Standard_D14_v2", 16, 112),
    # DSv2
    VmSize("Standard_DS2_v2", 2, 7),
    VmSize("Standard_DS3_v2", 4, 14),
    VmSize("Standard_DS4_v2", 8, 28),
    VmSize("Standard_DS5_v2", 16, 56),
    # Dv3 / Dsv3
    VmSize("Standard_D2_v3", 2, 8),
    VmSize("Standard_D4_v3", 4, 16),
    VmSize("Standard_D8_v3", 8, 32),
    VmSize("Standard_D16_v3", 16, 64),
    VmSize("Standard_D2s_v3", 2, 8),
    VmSize("Standard_D4s_v3", 4, 16),
    VmSize("Standard_D8s_v3", 8, 32),
    VmSize("Standard_D16s_v3", 16, 64),
    # Dsv5 / Dv5
    VmSize("Standard_D2s_v5", 2, 8),
    VmSize("Standard_D4s_v5", 4, 16),
    VmSize("Standard_D8s_v5", 8, 32),
    VmSize("Standard_D16s_v5", 16, 64),
    VmSize("Standard_D2_v5", 2, 8),
    VmSize("Standard_D4_v5", 4, 16),
    # Fsv2 (compute optimised)
    VmSize("Standard_F2s_v2", 2, 4),
    VmSize("Standard_F4s_v2", 4, 8),
    VmSize("Standard_F8s_v2", 8, 16),
    VmSize("Standard_F16s_v2", 16, 32),
    # Esv5 (memory optimised)
    VmSize("Standard_E2s_v5", 2, 16),
    VmSize("Standard_E4s_v5", 4, 32),
    VmSize("Standard_E8s_v5", 8, 64),
    # B (burstable, dev/test)
    VmSize("Standard_B2s", 2, 4),
    VmSize("Standard_B2ms", 2, 8),
    VmSize("Standard_B4ms", 4, 16),
    # GPU
    VmSize("Standard_NC6s_v3", 6, 112, 1),
    VmSize("Standard_NC4as_T4_v3", 4, 28, 1),
    VmSize("Standard_NC8as_T4_v3", 8, 56, 1),
]

VM_SIZES: dict[str, VmSize] = {s.name.lower(): s for s in _SIZES}


def lookup(name: str) -> VmSize | None:
    """Case-insensitive, as Azure takes size names."""
    return VM_SIZES.get(name.strip().lower())


def names() -> list[str]:
    return [s.name for s in _SIZES]
