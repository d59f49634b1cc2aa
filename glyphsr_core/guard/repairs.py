"""The ladder of word repairs, least visible first.

A word the upscaler got wrong is repaired with pixels built from two images of the same window:
the upscaler's own output (its look: grain, crisp edges) and the faithful reference (its letter
shapes), colour matched to the upscaler. Each rung shows more of the reference:

1. `detail`: the reference's letters, their edges made as crisp as the upscaler's inside the word
   box, with the upscaler's finest band (grain, texture) on top where the two pictures agree, so
   the repair keeps the upscaler's look without its wrong strokes;
2. `sharpened`: the same crisp reference letters without the upscaler's texture, so a soft
   reference does not leave a blurry rectangle in a sharp picture;
3. `reference`: the reference's pixels as they are (today's Text Guard paste);
4. `reference` again with a margin of one, then three word heights of the reference's background,
   which the OCR detector sometimes needs to find a word at all.

The caller reads every rung back and keeps a rung for a word only when the word then reads right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..sampling.colorfix import color_fix

DETAIL, SHARPENED, REFERENCE = "detail", "sharpened", "reference"
#: the gains a `sharpened` repair tries on the reference's letter-edge bands, smallest first
SHARPEN_GAINS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: bands (a-trous levels: 1, 2, 4 px) that hold a letter's edges at x4: what `sharpened` amplifies
EDGE_LEVELS = 2
#: window (pixels) whose darkest and brightest reference values bound a sharpened pixel
OVERSHOOT_WINDOW = 5
#: mean colour difference (0..1) at which the upscaler's texture is faded out entirely
AGREEMENT_TOLERANCE = 0.08


@dataclass(frozen=True)
class Rung:
    """One repair: how its pixels are made, and how far beyond `dilation` its mask reaches
    (in word heights)."""

    kind: str
    context: float = 0.0

    @property
    def name(self) -> str:
        return self.kind if self.context == 0 else f"{self.kind}, margin {self.context:g} x height"


LADDER = (Rung(DETAIL), Rung(SHARPENED), Rung(REFERENCE), Rung(REFERENCE, 1.0), Rung(REFERENCE, 3.0))


def blur(image: torch.Tensor, levels: int = 1) -> torch.Tensor:
    """`levels` a-trous [1 2 1] x [1 2 1] / 16 blurs of [B, C, H, W] (taps 1, 2, 4 ... pixels apart):
    what is left without the finest `levels` bands."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=image.dtype, device=image.device) / 4
    channels = image.shape[1]
    rows_kernel = kernel.view(1, 1, 1, 3).repeat(channels, 1, 1, 1)
    cols_kernel = kernel.view(1, 1, 3, 1).repeat(channels, 1, 1, 1)
    for level in range(levels):
        step = 2**level
        padded = F.pad(image, (step, step, step, step), mode="replicate")
        rows = F.conv2d(padded, rows_kernel, groups=channels, dilation=(1, step))
        image = F.conv2d(rows, cols_kernel, groups=channels, dilation=(step, 1))
    return image


def detail_band(image: torch.Tensor, levels: int) -> torch.Tensor:
    return image - blur(image, levels)


def band_energy(image: torch.Tensor, weight: torch.Tensor) -> float:
    """Mean energy of `image`'s letter-edge bands under `weight` [H, W]."""
    w = weight[None, None].to(image.dtype)
    return float((detail_band(image, EDGE_LEVELS) ** 2 * w).sum()) / max(float(w.sum()), 1e-12)


def local_range(image: torch.Tensor, size: int = OVERSHOOT_WINDOW) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum and maximum of [B, C, H, W] over a `size` x `size` window."""
    padded = F.pad(image, (size // 2,) * 4, mode="replicate")
    return -F.max_pool2d(-padded, size, stride=1), F.max_pool2d(padded, size, stride=1)


def sharpened(reference: torch.Tensor, upscaled: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The reference with its letter edges as crisp as the upscaler's under `weight`.

    The boosted edge bands are kept inside the reference's own local range, so edges steepen
    without the bright and dark halos of an unsharp mask; the gain is the smallest of a few
    steps whose result is as crisp as the upscaler (or the largest step when none is).
    """
    target = band_energy(upscaled, weight)
    if band_energy(reference, weight) >= target:
        return reference
    band = detail_band(reference, EDGE_LEVELS)
    low, high = local_range(reference)
    result = reference
    for gain in SHARPEN_GAINS:
        result = torch.minimum(torch.maximum(reference + gain * band, low), high)
        if band_energy(result, weight) >= target:
            break
    return result


def with_upscaler_detail(reference: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
    """The reference's letter shapes (its coarse bands) with the upscaler's edge bands where the two
    pictures agree at the letters' scale; where they differ (the upscaler's wrong strokes), the
    reference's own bands."""
    coarse_up, coarse_ref = blur(upscaled, EDGE_LEVELS + 1), blur(reference, EDGE_LEVELS + 1)
    disagreement = (coarse_up - coarse_ref).abs().mean(dim=1, keepdim=True)
    agreement = (1.0 - disagreement / AGREEMENT_TOLERANCE).clamp(0, 1)
    detail = agreement * detail_band(upscaled, EDGE_LEVELS) + (1 - agreement) * detail_band(reference, EDGE_LEVELS)
    return blur(reference, EDGE_LEVELS) + detail


def repair_patch(kind: str, upscaled: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor,
                 color_method: str) -> torch.Tensor:
    """The repair's pixels for a window: `upscaled` and `reference` are [1, 3, h, w] crops of the
    upscaler's output and the (resized) reference, `weight` [h, w] the word mask inside the window."""
    if color_method != "none":
        reference = color_fix(reference, upscaled, color_method)
    if kind == REFERENCE:
        patch = reference
    elif kind == DETAIL:
        patch = with_upscaler_detail(sharpened(reference, upscaled, weight), upscaled)
    elif kind == SHARPENED:
        patch = sharpened(reference, upscaled, weight)
    else:
        raise ValueError(f"unknown repair {kind!r}; expected one of {DETAIL}, {SHARPENED}, {REFERENCE}")
    return patch.clamp(0, 1)
