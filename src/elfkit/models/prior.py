"""The physics prior every ELF model corrects: the logit of the gradient-expansion ELF GE
(`elfkit.features`), squashed into [floor, 1 - floor] first, logit(floor + (1 - 2 floor) GE).

GE reaches 1 at every nucleus while DFT stays near 0.97; without the squash the prior logit
is a sharp spike there that a network has to cancel (see `elfkit.models.unet`).
"""

from __future__ import annotations

import torch


def check_prior_floor(floor: float) -> float:
    """`floor` when it lies in (0, 0.5), else ValueError."""
    if not 0 < floor < 0.5:
        raise ValueError(f"prior_floor must lie in (0, 0.5), got {floor}")
    return floor


def prior_logit(ge_elf: torch.Tensor, floor: float) -> torch.Tensor:
    """logit(floor + (1 - 2 floor) GE) of the gradient-expansion ELF (dimensionless)."""
    return torch.logit(floor + (1 - 2 * floor) * ge_elf.clamp(0, 1))
