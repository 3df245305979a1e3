"""The periodic à-trous U-Net: an undecimated 3D U-Net on the unit-cell grid.

Seed 004's U-Net halves the grid between levels. Here a level doubles the dilation of its
convolutions instead of halving the grid (the "à trous" form of the same network: the same
receptive field, every level at full resolution), so the prediction is exactly equivariant
under translations by any grid vector and works on grids of any size, odd ones included.
Padding is circular in every convolution (the cell is periodic). Two modes of one forward:

- periodic: the input is a whole cell; every convolution wraps around it;
- valid: the input is a block with a halo of `receptive_radius` voxels on each side and the
  output is the block's centre (used for tiles of large cells and training patches); on a
  block cut from a periodic cell with wrap-around this gives exactly the periodic result.

The output is a logit added to the logit of the gradient-expansion ELF channel (the physics
baseline), so the network learns a correction; ELF = sigmoid(logit), dimensionless in (0, 1).
No layer uses statistics over the grid (no batch or group norm), so tiles equal the whole cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LOGIT_CLAMP = 1e-3


class _Conv(nn.Module):
    """3x3x3 convolution with dilation d, circular padding in periodic mode, none in valid mode."""

    def __init__(self, cin: int, cout: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv3d(cin, cout, 3, dilation=dilation)

    def forward(self, x: torch.Tensor, periodic: bool) -> torch.Tensor:
        if periodic:
            x = F.pad(x, [self.dilation] * 6, mode="circular")
        return self.conv(x)


class _ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))) at one dilation; shrinks by 2 * dilation per side in valid mode."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.first = _Conv(width, width, dilation)
        self.second = _Conv(width, width, dilation)
        self.shrink = 2 * dilation

    def forward(self, x: torch.Tensor, periodic: bool) -> torch.Tensor:
        y = self.second(F.silu(self.first(F.silu(x), periodic)), periodic)
        return _crop(x, 0 if periodic else self.shrink) + y


def _crop(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Remove `margin` voxels from each side of the three spatial axes."""
    if margin == 0:
        return x
    return x[..., margin:-margin, margin:-margin, margin:-margin]


class PeriodicUNet(nn.Module):
    """Undecimated periodic U-Net mapping feature channels (C, N1, N2, N3) to ELF logits (N1, N2, N3).

    `dilations` lists the levels from fine to coarse (the last is the bottleneck);
    `blocks` residual blocks per level on the way down and one on the way up.
    `ge_channel` is the index of the gradient-expansion ELF among the inputs (the baseline).
    """

    def __init__(self, in_channels: int = 4, width: int = 32, dilations=(1, 2, 4, 8), blocks: int = 1, ge_channel: int = 1):
        super().__init__()
        self.config = {"in_channels": in_channels, "width": width, "dilations": list(dilations), "blocks": blocks, "ge_channel": ge_channel}
        self.ge_channel = ge_channel
        self.stem = nn.Conv3d(in_channels, width, 1)
        self.down = nn.ModuleList(nn.ModuleList(_ResidualBlock(width, d) for _ in range(blocks)) for d in dilations)
        self.merge = nn.ModuleList(nn.Conv3d(2 * width, width, 1) for _ in dilations[:-1])
        self.up = nn.ModuleList(_ResidualBlock(width, d) for d in dilations[:-1])
        self.head = nn.Sequential(nn.Conv3d(width, width, 1), nn.SiLU(), nn.Conv3d(width, 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.dilations = tuple(dilations)
        self.blocks = blocks

    @property
    def receptive_radius(self) -> int:
        """Voxels of context needed on each side of an output voxel (the halo of valid mode)."""
        down = sum(2 * d * self.blocks for d in self.dilations)
        return down + sum(2 * d for d in self.dilations[:-1])

    def forward(self, x: torch.Tensor, periodic: bool = True) -> torch.Tensor:
        """Logits (B, N1, N2, N3); in valid mode each axis is 2 * receptive_radius shorter."""
        baseline = x[:, self.ge_channel].clamp(_LOGIT_CLAMP, 1 - _LOGIT_CLAMP)
        h = self.stem(x)
        skips = []
        for level in self.down:
            for block in level:
                h = block(h, periodic)
            skips.append(h)
        skips.pop()
        for merge, block in zip(reversed(self.merge), reversed(self.up)):
            skip = skips.pop()
            margin = 0 if periodic else (skip.shape[-1] - h.shape[-1]) // 2
            h = block(merge(torch.cat([h, _crop(skip, margin)], dim=1)), periodic)
        margin = 0 if periodic else self.receptive_radius
        return self.head(h)[:, 0] + torch.logit(_crop(baseline, margin))
