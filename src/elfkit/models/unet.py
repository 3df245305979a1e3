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

`block_logits` runs the same network on a large cell level by level: each level's
activations are stored for the whole cell (as bfloat16 for the largest) and computed in blocks
with a halo of that level's own reach, read wrapping around the cell, and convolved without
padding in channels-last layout, so the memory is a few stored grids and the extra work per
level is small (a tile of the whole network needs a halo of the full receptive radius, 44
voxels, on every side).
"""

from __future__ import annotations

import copy
import itertools
import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from elfkit.models import native_bf16
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
    def block_logits(self, features: torch.Tensor, block_points: int, bf16: bool = False) -> torch.Tensor:
        """Logits (N1, N2, N3) of periodic `features` (C, N1, N2, N3), the same as the periodic
        forward, computed level by level in blocks of about `block_points` points each (halo
        included). With `bf16` the activations between levels are kept as bfloat16 (half the
        memory) and, where the CPU computes bfloat16 natively (`native_bf16`), so are the
        convolutions (as in training, 2-3x faster); elsewhere they run in float32 on each block.
        `first_block_level` then `block_logits_after_first` in one call."""
        first, ge = self.first_block_level(features, block_points, bf16)
        return self.block_logits_after_first(first, ge, block_points, bf16)

    @torch.no_grad()
    def first_block_level(self, features: torch.Tensor, block_points: int, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The finest level's output (N1, N2, N3, width) of periodic `features` (C, N1, N2, N3),
        in blocks, and the gradient-expansion ELF channel (N1, N2, N3, 1) float32: all the later
        levels need of the features, so a caller can release them here."""
        storage, compute = _block_dtypes(bf16)
        net = self._block_copy(compute)
        first = _by_blocks(partial(_down_level, net.stem, net.down[0]), [features.permute(1, 2, 3, 0)],
                           2 * self.dilations[0] * self.blocks, block_points, storage, compute)
        return first, features[self.ge_channel, ..., None].to(torch.float32, copy=True)

    @torch.no_grad()
    def block_logits_after_first(self, first: torch.Tensor, ge: torch.Tensor, block_points: int, bf16: bool = False) -> torch.Tensor:
        """Logits (N1, N2, N3) from `first_block_level`'s outputs: the other levels in blocks."""
        storage, compute = _block_dtypes(bf16)
        net = self._block_copy(compute)
        h, skips = first, [first]
        for dilation, level in zip(self.dilations[1:], net.down[1:]):
            h = _by_blocks(partial(_down_level, None, level), [h], 2 * dilation * self.blocks, block_points, storage, compute)
            skips.append(h)
        skips.pop()
        del first
        for dilation, merge, block in zip(reversed(self.dilations[:-1]), reversed(net.merge), reversed(net.up)):
            h = _by_blocks(partial(_up_level, merge, block), [h, skips.pop()], 2 * dilation, block_points, storage, compute)
        head = partial(_head_logits, net, h.shape[-1])
        return _by_blocks(head, [h, ge], 0, block_points, torch.float32, torch.float32)[..., 0]

    def _block_copy(self, compute: torch.dtype) -> PeriodicUNet:
        """This network with its weights as `compute` in channels-last layout (oneDNN then
        returns channels-last outputs; autocast copies of the weights are not)."""
        return copy.deepcopy(self).to(compute, memory_format=torch.channels_last_3d)


def _block_dtypes(bf16: bool) -> tuple[torch.dtype, torch.dtype]:
    """The dtypes activations are stored in between levels and convolved in, for `block_logits`."""
    if not bf16:
        return torch.float32, torch.float32
    return torch.bfloat16, torch.bfloat16 if native_bf16(torch.device("cpu")) else torch.float32


def _head_logits(net: PeriodicUNet, width: int, x: torch.Tensor) -> torch.Tensor:
    """Logits of a float32 block holding the last level's `width` channels and then the
    gradient-expansion ELF."""
    return net.head(x[:, :width].to(net.head[0].weight.dtype)).float() + net.prior(x[:, width:])


def _down_level(stem: nn.Module | None, level: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    if stem is not None:
        x = stem(x)
    for block in level:
        x = block(x, periodic=False)
    return x


def _up_level(merge: nn.Module, block: _ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """The up level on a block holding the coarser level's channels and then the skip's."""
    return block(merge(x), periodic=False)


def block_sides(shape: tuple[int, int, int], halo: int, block_points: int) -> list[int]:
    """Sides (points per axis, halo excluded) of the blocks that tile a periodic grid of `shape`
    so that a block with `halo` more points on each side holds about `block_points` points,
    cubic where the axes allow, whole axes where they are short, even across each axis."""
    sides, budget = list(shape), float(block_points)
    for rank, axis in enumerate(sorted(range(3), key=lambda a: shape[a])):
        edge = round(budget ** (1 / (3 - rank)))
        side = max(1, min(shape[axis], edge - 2 * halo))
        sides[axis] = math.ceil(shape[axis] / math.ceil(shape[axis] / side))
        budget /= sides[axis] + 2 * halo
    return sides


def _wrapped_segments(start: int, stop: int, halo: int, n: int) -> list[tuple[slice, slice]]:
    """(source, destination) slices that read points start - halo to stop + halo of a periodic
    axis of `n` points (wrapping around, as often as needed) into one contiguous range."""
    segments, position, first = [], 0, start - halo
    while position < stop - start + 2 * halo:
        source = (first + position) % n
        length = min(n - source, stop - start + 2 * halo - position)
        segments.append((slice(source, source + length), slice(position, position + length)))
        position += length
    return segments


def _periodic_block(inputs: list[torch.Tensor], start, stop, halo: int, dtype: torch.dtype) -> torch.Tensor:
    """Points start - halo to stop + halo (wrapping around) of periodic (N1, N2, N3, C) grids,
    their channels one after the other, as a (1, C, n1, n2, n3) `dtype` tensor in
    channels-last layout (the layout oneDNN convolves fastest)."""
    shape = inputs[0].shape[:3]
    sizes = [b - a + 2 * halo for a, b in zip(start, stop)]
    out = torch.empty((*sizes, sum(x.shape[-1] for x in inputs)), dtype=dtype)
    axes = [_wrapped_segments(a, b, halo, n) for a, b, n in zip(start, stop, shape)]
    for (s1, d1), (s2, d2), (s3, d3) in itertools.product(*axes):
        channel = 0
        for x in inputs:
            out[d1, d2, d3, channel : channel + x.shape[-1]] = x[s1, s2, s3]
            channel += x.shape[-1]
    return out.permute(3, 0, 1, 2)[None]


def _by_blocks(level, inputs: list[torch.Tensor], halo: int, block_points: int, storage: torch.dtype,
               compute: torch.dtype) -> torch.Tensor:
    """`level` applied to the periodic stored `inputs` (N1, N2, N3, C) block by block: each
    block is read with `halo` more points on each side (wrapping around), the inputs' channels
    one after the other, as `compute`; `level` runs without padding (valid mode) and gives the
    block's own points; returns (N1, N2, N3, C_out) as `storage`."""
    shape = tuple(inputs[0].shape[:3])
    sides = block_sides(shape, halo, block_points)
    out = None
    for start in itertools.product(*(range(0, n, side) for n, side in zip(shape, sides))):
        stop = tuple(min(a + side, n) for a, side, n in zip(start, sides, shape))
        result = level(_periodic_block(inputs, start, stop, halo, compute))[0].permute(1, 2, 3, 0)
        if out is None:
            out = torch.empty((*shape, result.shape[-1]), dtype=storage)
        out[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]] = result
    return out
