"""A compact restorer without its pixel-shuffle grid: each output phase's local offset taken out.

A pixel-shuffle net builds every output pixel from one of `scale * scale` sub-pixel channels, and the
bundled one gives each phase a small offset of its own that follows the local picture: a 4-px grid,
1.5-4 levels deep over curved shading and grain, and around every edge (flat areas already get
bicubic, `run.py`). Here the net's correction to Pillow's bicubic is split by phase, each phase's mean
over a small window is compared with the mean of all phases, and the difference (the grid) is
subtracted. What the net adds that is not periodic (sharper strokes, cleaner edges) stays; a true
high-resolution picture has no preferred phase, so nothing real is periodic at the net's own pitch
everywhere in a window.

The wrapper is an ordinary module (any device), so tiling with context margins gives the untiled
result as long as the margin covers `receptive_field`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .compact import pillow_bicubic_taps

#: window (input pixels) over which each phase's offset is measured: 5 follows the grid's depth as the
#: picture changes and read best of 5, 9 and 17 (word F1 on the clean x4 evaluation set)
PHASE_WINDOW = 5


def bicubic_kernel(scale: int) -> torch.Tensor:
    """(s*s, 1, 5, 5): Pillow's bicubic as one 5x5 filter per output phase (interior pixels), so the
    base the correction is measured from is the bicubic the smooth areas get, on any device."""
    taps = torch.from_numpy(pillow_bicubic_taps(scale)).float()
    return torch.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 5, 5)


def box_mean(images: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a `window` x `window` square (edge-replicated) from running sums: a few adds a pixel
    whatever the window."""
    pad = window // 2
    for dim in (2, 3):
        padding = (0, 0, pad + 1, pad) if dim == 2 else (pad + 1, pad, 0, 0)
        sums = torch.cumsum(F.pad(images, padding, mode="replicate"), dim=dim)
        length = sums.shape[dim] - window
        images = (sums.narrow(dim, window, length) - sums.narrow(dim, 0, length)) / window
    return images


def phase_grid(correction: torch.Tensor, scale: int, window: int) -> torch.Tensor:
    """The period-`scale` part of `correction` (B, C, H*s, W*s): per input pixel, each phase's local
    mean minus the mean over phases."""
    batch, channels, height, width = correction.shape
    height, width = height // scale, width // scale
    means = box_mean(F.pixel_unshuffle(correction.contiguous(), scale), window)
    means = means.view(batch, channels, scale * scale, height, width)
    offsets = means - means.mean(dim=2, keepdim=True)
    return F.pixel_shuffle(offsets.reshape(batch, -1, height, width), scale)


class PhaseEqualized(nn.Module):
    """`net(x)` with its phase grid removed (see the module docstring)."""

    def __init__(self, net: nn.Module, window: int = PHASE_WINDOW) -> None:
        super().__init__()
        self.net, self.window = net, window
        self.scale, self.channels = net.scale, net.channels
        self.num_feat = net.num_feat  # the node's memory estimate reads it
        self.register_buffer("bicubic", bicubic_kernel(self.scale), persistent=False)

    @property
    def receptive_field(self) -> int:
        """Input pixels on each side that one output pixel depends on."""
        return self.net.receptive_field + self.window // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        channels = x.shape[1]
        weights = self.bicubic.to(x.dtype).repeat(channels, 1, 1, 1)
        base = F.pixel_shuffle(F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), weights, groups=channels), self.scale)
        return out - phase_grid(out - base, self.scale, self.window)
