"""The periodic à-trous U-Net: an undecimated 3D U-Net on the unit-cell grid.

Seed 004's U-Net halves the grid between levels. Here a level doubles the dilation of its
convolutions instead of halving the grid (the "à trous" form of the same network: the same
receptive field, every level at full resolution), so the prediction is exactly equivariant
under translations by any grid vector and works on grids of any size, odd ones included.
Padding is circular in every convolution (the cell is periodic). Two modes of one forward:

- periodic: the input is a whole cell; every convolution wraps around it;
- valid: the input is a block with a halo of `receptive_radius` voxels on each side and the
  output is the block's centre (used for training patches); on a block cut from a periodic
  cell with wrap-around this gives exactly the periodic result.

`column_logits` runs the same network on a large cell level by level: each level's
activations are stored for the whole cell (as bfloat16 for the largest) and computed in columns
(tiles along the first two grid axes, the whole third axis) with a halo of that level's own
reach, wrapping around the cell, so the memory is a few stored grids and the extra work per
level is small (a tile of the whole network needs a halo of the full receptive radius, 44
voxels, on every side).
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from elfkit.models.prior import check_prior_floor, prior_logit

from elfkit.features import FeatureSet, feature_channels

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
    `ge_channel` is the index of the gradient-expansion ELF among the inputs (the baseline) and
    `prior_floor` how far its squashed form stays from 0 and 1 (see the module docstring).
    `features` names the channel set it reads (`elfkit.features.FeatureSet`), `in_channels`
    its size (checked; default: that size).
    """

    def __init__(
        self,
        in_channels: int | None = None,
        width: int = 32,
        dilations=(1, 2, 4, 8),
        blocks: int = 1,
        ge_channel: int = 1,
        prior_floor: float = 0.05,
        features: str = FeatureSet.SAD.value,
    ):
        super().__init__()
        check_prior_floor(prior_floor)
        self.input_channels = feature_channels(features)
        in_channels = in_channels or len(self.input_channels)
        if in_channels != len(self.input_channels):
            raise ValueError(f"in_channels {in_channels}: the feature set {features!r} has {len(self.input_channels)} channels")
        self.config = {
            "in_channels": in_channels,
            "width": width,
            "dilations": list(dilations),
            "blocks": blocks,
            "ge_channel": ge_channel,
            "prior_floor": prior_floor,
        }
        if FeatureSet(features) != FeatureSet.SAD:
            self.config["features"] = FeatureSet(features).value
        self.ge_channel = ge_channel
        self.prior_floor = prior_floor
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

    def prior(self, ge_elf: torch.Tensor) -> torch.Tensor:
        """The prior logit of the gradient-expansion ELF, squashed into [floor, 1 - floor]."""
        return prior_logit(ge_elf, self.prior_floor)

    def forward(self, x: torch.Tensor, periodic: bool = True) -> torch.Tensor:
        """Logits (B, N1, N2, N3); in valid mode each axis is 2 * receptive_radius shorter."""
        prior = self.prior(x[:, self.ge_channel])
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
        return self.head(h)[:, 0] + _crop(prior, margin)

    @torch.no_grad()
    def column_logits(self, features: torch.Tensor, column_points: int, bf16: bool = False) -> torch.Tensor:
        """Logits (N1, N2, N3) of periodic `features` (C, N1, N2, N3), the same as the periodic
        forward, computed level by level in columns of about `column_points` points each (halo
        included). With `bf16` the convolutions run in bfloat16 (autocast, as in training) and
        the activations between levels are kept as bfloat16: half the memory, 2-3x faster."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return self._column_logits(features, column_points, torch.bfloat16 if bf16 else torch.float32).float()

    def _column_logits(self, features: torch.Tensor, column_points: int, storage: torch.dtype) -> torch.Tensor:
        h, skips = features, []
        for index, (dilation, level) in enumerate(zip(self.dilations, self.down)):
            stem = self.stem if index == 0 else None
            h = _by_columns(partial(_down_level, stem, level), [h], 2 * dilation * self.blocks, column_points, storage)
            skips.append(h)
        skips.pop()
        for dilation, merge, block in zip(reversed(self.dilations[:-1]), reversed(self.merge), reversed(self.up)):
            h = _by_columns(partial(_up_level, merge, block), [h, skips.pop()], 2 * dilation, column_points, storage)
        ge = features[self.ge_channel : self.ge_channel + 1]
        return _by_columns(self._head_logits, [h, ge], 0, column_points, torch.float32)[0]

    def _head_logits(self, h: torch.Tensor, ge_elf: torch.Tensor) -> torch.Tensor:
        return self.head(h) + self.prior(ge_elf)


def _down_level(stem: nn.Module | None, level: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    if stem is not None:
        x = stem(x)
    for block in level:
        x = _column_block(block, x)
    return x


def _up_level(merge: nn.Module, block: _ResidualBlock, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    return _column_block(block, merge(torch.cat([h, skip], dim=1)))


def _column_conv(conv: _Conv, x: torch.Tensor) -> torch.Tensor:
    """A convolution on a column: circular along the third grid axis, valid along the first two."""
    d = conv.dilation
    padded = F.pad(x, [d, d, 0, 0, 0, 0], mode="circular")
    return conv.conv(padded.contiguous(memory_format=torch.channels_last_3d))


def _column_block(block: _ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """A residual block on a column; its first two axes come out 2 * shrink shorter."""
    y = _column_conv(block.second, F.silu(_column_conv(block.first, F.silu(x))))
    s = block.shrink
    return x[:, :, s : x.shape[2] - s, s : x.shape[3] - s] + y


def _by_columns(level, inputs: list[torch.Tensor], halo: int, column_points: int, storage: torch.dtype) -> torch.Tensor:
    """`level` applied to the periodic stored `inputs` (C, N1, N2, N3) column by column: each
    column is read with `halo` more points on each side along N1 and N2 (wrapping around) and
    gives its own points."""
    n1, n2, n3 = inputs[0].shape[1:]
    side = max(1, math.isqrt(max(1, column_points // n3)) - 2 * halo)
    out = None
    for i in range(0, n1, side):
        rows = torch.arange(i - halo, min(i + side, n1) + halo) % n1
        for j in range(0, n2, side):
            cols = torch.arange(j - halo, min(j + side, n2) + halo) % n2
            result = level(*[x.index_select(1, rows).index_select(2, cols)[None].float() for x in inputs])[0]
            if out is None:
                out = torch.empty((result.shape[0], n1, n2, n3), dtype=storage)
            out[:, i : i + result.shape[1], j : j + result.shape[2]] = result
    return out
