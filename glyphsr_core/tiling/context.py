"""Tiling with context margins (Text Restore; input pixels).

Neighbouring tiles share `context_margin` input pixels: each tile reads half of that band beyond the
part it keeps and the restorer's output there is cropped away, so a net whose receptive field fits in
that half (the bundled restorer: 10 px) gives the untiled result exactly. Nothing is blended: every
output pixel comes from exactly one tile. (The tiled sampler's *blend overlap* is `grid`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .grid import TilingError


@dataclass(frozen=True)
class TilePlan:
    """Where each tile reads (with margin) and which part of its output is kept."""

    read: tuple[int, int, int, int]   # y0, y1, x0, x1 in input pixels
    keep: tuple[int, int, int, int]   # y0, y1, x0, x1 in input pixels (inside `read`)


def _axis_tiles(length: int, tile: int, context_margin: int) -> list[tuple[int, int, int, int]]:
    """(read0, read1, keep0, keep1) along one axis."""
    if length <= tile:
        return [(0, length, 0, length)]
    half = context_margin // 2
    core = tile - 2 * half
    out = []
    start = 0
    while start < length:
        end = min(length, start + core)
        out.append((max(0, start - half), min(length, end + half), start, end))
        start = end
    return out


def plan_tiles(height: int, width: int, tile: int, context_margin: int) -> list[TilePlan]:
    """Tiles of at most `tile` x `tile` input pixels covering the image."""
    if tile < 16:
        raise TilingError(f"tile_size must be at least 16 pixels, got {tile}")
    if not 0 <= context_margin <= tile // 2:
        raise TilingError(f"tile_overlap (the context margin) must be between 0 and half the tile size "
                          f"({tile // 2}), got {context_margin}")
    return [TilePlan((ry0, ry1, rx0, rx1), (ky0, ky1, kx0, kx1))
            for ry0, ry1, ky0, ky1 in _axis_tiles(height, tile, context_margin)
            for rx0, rx1, kx0, kx1 in _axis_tiles(width, tile, context_margin)]


@torch.no_grad()
def run_tiled(model: torch.nn.Module, images: torch.Tensor, net_scale: int, tile: int, context_margin: int,
              on_tile: Callable[[int, int], None] | None = None,
              check_cancel: Callable[[], None] | None = None, border: int = 0) -> torch.Tensor:
    """(B, 3, H, W) in 0..1 -> (B, 3, H*s, W*s), clamped; the output lives on the input's device.

    `border` > 0: tiles that touch a true border of the image read that many edge-replicated pixels
    beyond it (the tile plan, and so the tile count, are those of the image). `check_cancel` is called
    before each tile (it raises to stop); `on_tile(done, total)` after each. `tile_outputs` gives the
    same tiles one by one, for callers that write them somewhere smaller than a float image.
    """
    batch, _, height, width = images.shape
    out = torch.empty(batch, 3, height * net_scale, width * net_scale, dtype=images.dtype, device=images.device)
    for (ky0, ky1, kx0, kx1), piece, done, total in tile_outputs(model, images, net_scale, tile, context_margin,
                                                                 check_cancel, border):
        out[:, :, ky0 * net_scale:ky1 * net_scale, kx0 * net_scale:kx1 * net_scale] = piece
        if on_tile is not None:
            on_tile(done, total)
    return out


@torch.no_grad()
def tile_outputs(model: torch.nn.Module, images: torch.Tensor, net_scale: int, tile: int, context_margin: int,
                 check_cancel: Callable[[], None] | None = None,
                 border: int = 0) -> Iterator[tuple[tuple[int, int, int, int], torch.Tensor, int, int]]:
    """Per tile: (keep box y0, y1, x0, x1 in input pixels, its clamped output (B, 3, h*s, w*s) on the
    input's device and dtype, tiles done, tile count). Only one tile's input and output exist at a
    time: the edge-replicated border context is added per tile, never to a padded copy of the image."""
    _, _, height, width = images.shape
    plans = plan_tiles(height, width, tile, context_margin)
    if border < 0:
        raise TilingError(f"border context must be >= 0, got {border}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    dtype = param.dtype if param is not None else images.dtype
    s = net_scale
    for done, plan in enumerate(plans, start=1):
        if check_cancel is not None:
            check_cancel()
        ry0, ry1, rx0, rx1 = plan.read
        ky0, ky1, kx0, kx1 = plan.keep
        top, left = (border if ry0 == 0 else 0), (border if rx0 == 0 else 0)
        pad = (left, border if rx1 == width else 0, top, border if ry1 == height else 0)
        piece = images[:, :, ry0:ry1, rx0:rx1].to(device=device, dtype=dtype)
        if any(pad):  # a true border: the replicated context a padded whole image would give there
            piece = torch.nn.functional.pad(piece, pad, mode="replicate")
        piece = model(piece)
        y0, x0 = (ky0 - ry0 + top) * s, (kx0 - rx0 + left) * s
        piece = piece[:, :, y0:y0 + (ky1 - ky0) * s, x0:x0 + (kx1 - kx0) * s]
        yield plan.keep, piece.clamp(0, 1).to(device=images.device, dtype=images.dtype), done, len(plans)
