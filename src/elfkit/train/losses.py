"""Loss terms on ELF grids and their learned balance.

VOX: mean absolute voxel error. HIST: the 1D Wasserstein-1 distance between the predicted and
reference ELF distributions (mean |sorted prediction - sorted reference| over a random subset
of points: exact W1 between the two empirical distributions, differentiable through the sort).
GRAD: mean absolute error of the finite differences along the three grid axes (periodic
differences on whole cells; for the point model, the differences across pairs of nearby probe
points). PERS: the same error of the differences between the two critical points of each DFT
persistence pair, i.e. of its persistence: for the point model each DFT ELF maximum and the saddle
it pairs with, for the U-Net every pair (maximum-saddle, saddle-ring, ring-minimum) of the whole
grid (`persistence_pair_ends`), whose weak saddles between molecules a smooth prediction loses. SLOPE (point model): the same error
of the central differences across each DFT maximum and saddle (its two face neighbours along
each grid axis), which vanish at the critical point: an error there moves the predicted
critical point off the DFT one, however small the values' error. Balanced by learned uncertainty
weights (Kendall, Gal and Cipolla 2018, Laplace form for L1 terms):
total = sum_i exp(-s_i) L_i + s_i.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CRITICAL_PERSISTENCE = 0.01
"""Smallest persistence (ELF units) of a DFT critical point the PERS and SLOPE losses and the
critical-point pools keep: half of the 0.02 at which `elfkit evaluate` counts critical points,
so the shallow ones it misses are in."""


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


def persistence_pair_ends(elf: np.ndarray) -> np.ndarray:
    """(K, 2) flat C-order indices (grid point (i, j, k) at fractional i/N1, j/N2, k/N3) of the
    higher and the lower critical point of each persistence pair of the ELF grid `elf`
    (`elfkit.analysis.critical.persistence_pairs`) with persistence at least
    `CRITICAL_PERSISTENCE`: their ELF difference is the pair's persistence."""
    from elfkit.analysis.critical import persistence_pairs

    pairs = persistence_pairs(np.asarray(elf, dtype=float))
    higher = np.flatnonzero((pairs.partner >= 0) & (pairs.persistence >= CRITICAL_PERSISTENCE) & (pairs.index > 0))
    higher = higher[pairs.index[pairs.partner[higher]] == pairs.index[higher] - 1]
    ends = [pairs.vertices[rows] for rows in (higher, pairs.partner[higher])]
    return np.stack([np.ravel_multi_index(tuple(end.T), elf.shape) for end in ends], axis=1).reshape(-1, 2)


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
