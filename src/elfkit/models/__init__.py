"""Model architectures by name, and the shipped models (see `checkpoint.py` for the format).

    from elfkit.models import build, ARCHITECTURES
    net = build("periodic-unet", width=32)
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn

from elfkit.errors import ElfkitError


class Architecture(str, Enum):
    """Every architecture elfkit can build, by its registry name."""

    PERIODIC_UNET = "periodic-unet"
    POINT = "point"


def _classes() -> dict[str, type[nn.Module]]:
    from elfkit.models.point import PointELF
    from elfkit.models.unet import PeriodicUNet

    return {Architecture.PERIODIC_UNET.value: PeriodicUNet, Architecture.POINT.value: PointELF}


ARCHITECTURES: tuple[str, ...] = tuple(a.value for a in Architecture)


def build(architecture: str, **config) -> nn.Module:
    """A fresh (untrained) network of the named architecture with its config keywords."""
    classes = _classes()
    if architecture not in classes:
        raise ElfkitError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    return classes[architecture](**config)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 convolutions natively: a CUDA GPU, or a CPU whose oneDNN
    has bfloat16 kernels (AVX-512 BF16 or AMX). An AVX2 CPU emulates them, about 15 times slower
    than float32 for the U-Net (a training step of `configs/hydrogen.yaml`: 15.5 s against 1.0 s)."""
    if device.type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
