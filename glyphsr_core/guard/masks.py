"""Where the guard may touch pixels: feathered word boxes and the crop that holds them.

A repair box is a word's axis-aligned box (normalised 0..1) in pixels. Its mask is 1 over the box
grown by half of `dilation` and fades linearly toward 0 at the box grown by the full `dilation`,
so a pasted or re-sampled region has a soft edge and no pixel farther than `dilation` from a word
box is ever written.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..types import Box


def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """A normalised box as whole pixels (x0, y0, x1, y1), x1/y1 exclusive, clipped to the image."""
    x0 = max(0, min(width, math.floor(box[0] * width)))
    y0 = max(0, min(height, math.floor(box[1] * height)))
    x1 = max(x0, min(width, math.ceil(box[2] * width)))
    y1 = max(y0, min(height, math.ceil(box[3] * height)))
    return x0, y0, x1, y1


def _ramp(coords: torch.Tensor, start: int, end: int, dilation: int) -> torch.Tensor:
    """Weight by whole-pixel distance d from [start, end): 1 up to dilation // 2, then linear to 0
    after `dilation` (the last pixel it reaches keeps a little weight)."""
    distance = torch.clamp(torch.maximum(start - coords, coords - (end - 1)), min=0)
    full = dilation // 2
    return torch.clamp((dilation + 1 - distance) / (dilation + 1 - full), 0.0, 1.0)


def word_mask(boxes: Sequence[Box], width: int, height: int, dilation: int, context: float = 0.0) -> torch.Tensor:
    """The union (max) of the feathered masks of `boxes`: float [H, W] in 0..1.

    `context` > 0 grows each box by that fraction of its own height on top of `dilation`, so a
    large word gets a margin of clean background the OCR detector can find it on.
    """
    if dilation < 0:
        raise ValueError(f"dilation must be 0 or more pixels, got {dilation}")
    base = dilation
    mask = torch.zeros(height, width)
    xs = torch.arange(width, dtype=torch.float32)
    ys = torch.arange(height, dtype=torch.float32)
    for box in boxes:
        x0, y0, x1, y1 = pixel_box(box, width, height)
        if x1 <= x0 or y1 <= y0:
            continue
        dilation = base + round(context * (y1 - y0))
        cx0, cx1 = max(0, x0 - dilation), min(width, x1 + dilation)
        cy0, cy1 = max(0, y0 - dilation), min(height, y1 + dilation)
        patch = _ramp(ys[cy0:cy1], y0, y1, dilation)[:, None] * _ramp(xs[cx0:cx1], x0, x1, dilation)[None, :]
        mask[cy0:cy1, cx0:cx1] = torch.maximum(mask[cy0:cy1, cx0:cx1], patch)
    return mask


def mask_crop(mask: torch.Tensor, margin: int, align: int = 1) -> tuple[int, int, int, int] | None:
    """The window (x0, y0, x1, y1) around the mask's non-zero pixels plus `margin`, its sides a
    multiple of `align` where the image allows (latent models need multiples of 8); None if empty."""
    rows = torch.nonzero(mask.amax(dim=1) > 0).flatten()
    cols = torch.nonzero(mask.amax(dim=0) > 0).flatten()
    if rows.numel() == 0:
        return None
    height, width = mask.shape
    y0, y1 = max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)
    x0, x1 = max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)
    x0, x1 = _align(x0, x1, width, align)
    y0, y1 = _align(y0, y1, height, align)
    return x0, y0, x1, y1


def _align(start: int, end: int, size: int, align: int) -> tuple[int, int]:
    """Grow [start, end) to a multiple of `align` inside [0, size); the whole side when it cannot fit."""
    if align <= 1:
        return start, end
    length = -(-(end - start) // align) * align
    if length > size:
        return 0, size
    start = max(0, min(start, size - length))
    return start, start + length
