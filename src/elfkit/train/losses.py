"""Loss terms on ELF grids and their learned balance.

VOX: mean absolute voxel error. HIST: the 1D Wasserstein-1 distance between the predicted and
reference ELF distributions (mean |sorted prediction - sorted reference| over a random subset
of points: exact W1 between the two empirical distributions, differentiable through the sort).
GRAD: mean absolute error of the finite differences along the three grid axes (periodic
differences on whole cells; for the point model, the differences across pairs of nearby probe
points). PERS (point model): the same error of the differences between each DFT ELF maximum and
the saddle it pairs with, i.e. of the maxima's persistence. SLOPE (point model): the same error
of the central differences across each DFT maximum and saddle (its two face neighbours along
each grid axis), which vanish at the critical point: an error there moves the predicted
critical point off the DFT one, however small the values' error. Balanced by learned uncertainty
weights (Kendall, Gal and Cipolla 2018, Laplace form for L1 terms):
total = sum_i exp(-s_i) L_i + s_i.
"""

from __future__ import annotations

import torch
from torch import nn


def vox_loss(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute ELF error per voxel."""
    return (pred - ref).abs().mean()


def hist_loss(pred: torch.Tensor, ref: torch.Tensor, points: int, generator: torch.Generator) -> torch.Tensor:
    """W1 distance between the ELF distributions of `pred` and `ref` on `points` random voxels
    (chosen with the CPU `generator`, so the choice does not depend on the device)."""
    flat_pred, flat_ref = pred.reshape(-1), ref.reshape(-1)
    if flat_pred.numel() > points:
        chosen = torch.randperm(flat_pred.numel(), generator=generator)[:points].to(flat_pred.device)
        flat_pred, flat_ref = flat_pred[chosen], flat_ref[chosen]
    return (torch.sort(flat_pred).values - torch.sort(flat_ref).values).abs().mean()


def _differences(x: torch.Tensor, axis: int, periodic: bool) -> torch.Tensor:
    if periodic:
        return torch.roll(x, -1, dims=axis) - x
    return torch.diff(x, dim=axis)


def grad_loss(pred: torch.Tensor, ref: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Mean absolute error of the grid finite differences of the ELF along the three axes."""
    axes = range(pred.ndim - 3, pred.ndim)
    return sum((_differences(pred, a, periodic) - _differences(ref, a, periodic)).abs().mean() for a in axes) / 3


def pair_grad_loss(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of the ELF differences across pairs of points, (2, P) each (row 1
    holds the partners of row 0): GRAD on pairs of nearby points, PERS on DFT maxima and the
    saddles they pair with, SLOPE on the two neighbours of a critical point. Zero (with a gradient) when there are no pairs."""
    if pred.shape[-1] == 0:
        return pred.sum() * 0.0
    return ((pred[0] - pred[1]) - (ref[0] - ref[1])).abs().mean()


class UncertaintyWeights(nn.Module):
    """Learned log-scales s_i of each term; `forward` returns the weighted total."""

    def __init__(self, names: list[str]):
        super().__init__()
        self.names = list(names)
        self.log_scales = nn.Parameter(torch.zeros(len(names)))

    def forward(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """sum_i exp(-s_i) L_i + s_i over the named terms."""
        stacked = torch.stack([terms[name] for name in self.names])
        return (torch.exp(-self.log_scales) * stacked + self.log_scales).sum()

    def weights(self) -> dict[str, float]:
        """The current weight exp(-s_i) of each term."""
        return {name: float(w) for name, w in zip(self.names, torch.exp(-self.log_scales.detach()))}
