"""Are a word's letters still the reference's letters? A test that needs no OCR.

An upscaler can bend a letter into another shape (R into A, N into II, e into o) and the bundled
OCR may still read the word right, guessing from the rest of it; another reader (or a person) does
not. So `changed words` also repairs a word whose ink differs from the reference's, and a repair
of a word is only kept when its ink agrees with the reference's.

The test compares ink maps at the reference's sharpness: in each picture the word box (grown by a
few pixels) is turned into luminance, and the upscaler's is blurred until its edges are no crisper
than the reference's (crispness is the upscaler's look, not another letter). The background is the
median of the box's outer ring, the ink polarity is the reference's (dark on light or light on
dark), and each map's ink is scaled by its own strong value (so contrast does not count). The ink
that differs, as a share of the reference's ink, is the word's shape difference (0: the same
letters; on the README's clean x4 set, words RealESRGAN_x4plus drew faithfully mostly sit at
0.1-0.4, bent letters mostly above 0.45; the blur steps are coarse, so the upscaler's word can end
softer than the reference and a crisp faithful word can measure above 0.45, which costs a `detail`
repair that keeps its look).
"""

from __future__ import annotations

import torch

from ..types import Box
from .masks import pixel_box
from .repairs import band_energy, blur

#: shape difference above which a word's letters are not the reference's (share of its ink area)
SHAPE_TOLERANCE = 0.45
#: pixels the word box is grown by before its ink is compared (its outer ring is the background)
SHAPE_MARGIN = 3
#: at most this many a-trous blurs soften the upscaler's word to the reference's sharpness
MAX_SOFTEN_LEVELS = 4
#: luminance step (0..1) below which the reference shows no letters in a box (a flat patch, a blank page)
MIN_CONTRAST = 0.04
#: quantile of a word's ink that counts as full ink (robust to a few over-bright pixels)
INK_QUANTILE = 0.98


def _luma(crop: torch.Tensor) -> torch.Tensor:
    return (0.299 * crop[0] + 0.587 * crop[1] + 0.114 * crop[2]).float()


def _ring(luma: torch.Tensor) -> torch.Tensor:
    return torch.cat([luma[0], luma[-1], luma[:, 0], luma[:, -1]])


def _strong_ink(luma: torch.Tensor, polarity: float) -> tuple[torch.Tensor, float]:
    """(the crop's ink offset from its background for the given polarity (+1: light ink), its strong value)"""
    ink = polarity * (luma - _ring(luma).median())
    return ink, float(torch.quantile(ink.flatten(), INK_QUANTILE))


def _ink(luma: torch.Tensor, polarity: float) -> torch.Tensor:
    """Ink 0..1 (background 0, strong ink 1) of a luminance crop."""
    ink, full = _strong_ink(luma, polarity)
    return (ink / max(full, 1e-3)).clamp(0, 1)


def _polarity(luma: torch.Tensor) -> float:
    offset = (luma - _ring(luma).median()).flatten()
    return 1.0 if torch.quantile(offset, INK_QUANTILE).abs() >= torch.quantile(offset, 1 - INK_QUANTILE).abs() else -1.0


def _as_soft_as(luma: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`luma` blurred in a-trous steps to the first step whose edge bands hold no more energy than the
    reference's: a crisp upscale is compared with a soft reference at (at most) its sharpness, so
    crispness alone does not count as another letter."""
    weight = torch.ones(luma.shape)
    target = band_energy(reference[None, None], weight)
    picture = luma[None, None]
    for level in range(MAX_SOFTEN_LEVELS + 1):
        softened = blur(picture, level) if level else picture
        if band_energy(softened, weight) <= target:
            break
    return softened[0, 0]


def shape_difference(image: torch.Tensor, reference: torch.Tensor, box: Box) -> float:
    """How far the letters in `box` of `image` [3, H, W] are from the reference's (same size): the
    ink that differs, as a share of the reference's ink (0: the same letters)."""
    height, width = image.shape[-2:]
    x0, y0, x1, y1 = pixel_box(box, width, height)
    x0, y0 = max(0, x0 - SHAPE_MARGIN), max(0, y0 - SHAPE_MARGIN)
    x1, y1 = min(width, x1 + SHAPE_MARGIN), min(height, y1 + SHAPE_MARGIN)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return 0.0
    theirs = _luma(reference[:, y0:y1, x0:x1])
    ours = _as_soft_as(_luma(image[:, y0:y1, x0:x1]), theirs)
    polarity = _polarity(theirs)
    if _strong_ink(theirs, polarity)[1] < MIN_CONTRAST:  # no letters in the reference there: nothing to compare
        return 0.0
    ink_ours, ink_theirs = _ink(ours, polarity), _ink(theirs, polarity)
    return float((ink_ours - ink_theirs).abs().sum()) / max(float(ink_theirs.sum()), 1e-3)


def misshapen(image: torch.Tensor, reference: torch.Tensor, box: Box | None) -> bool:
    """Whether the word in `box` is drawn with other letters than the reference's."""
    return box is not None and shape_difference(image, reference, box) > SHAPE_TOLERANCE
