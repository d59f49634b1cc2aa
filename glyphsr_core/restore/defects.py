"""Two look defects of an upscaler, measured against bicubic: a frame on the image edges, a phase grid.

Both are values in 8-bit levels (0..255) on (3, H, W) or (B, 3, H, W) float images in 0..1.

* **Frame**: the mean of the outermost `band` output rows / columns on each of the four edges minus
  the same band of the bicubic result. A net whose convolutions pad with zeros darkens that band.
* **Grid**: an x`s` net that builds each output pixel from one of `s*s` sub-pixel channels (pixel
  shuffle) can give each phase its own small offset, a period-`s` pattern that shows over flat
  areas. Measured as the spread (max - min) over the `s*s` phases of the mean high-pass value
  (image minus its local mean over a window of whole periods) inside a region.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

EDGES = ("top", "bottom", "left", "right")


def _bchw(image: torch.Tensor) -> torch.Tensor:
    image = image.detach().float().cpu()
    return image[None] if image.ndim == 3 else image


def edge_band_means(image: torch.Tensor, band: int = 2) -> dict[str, float]:
    """Mean value (levels) of the outermost `band` rows / columns on each edge, over batch and channels."""
    image = _bchw(image) * 255.0
    return {"top": image[:, :, :band].mean().item(), "bottom": image[:, :, -band:].mean().item(),
            "left": image[:, :, :, :band].mean().item(), "right": image[:, :, :, -band:].mean().item()}


def frame_offsets(output: torch.Tensor, reference: torch.Tensor, band: int = 2) -> dict[str, float]:
    """Per edge: `output`'s edge-band mean minus `reference`'s (levels; negative = darker frame)."""
    out, ref = edge_band_means(output, band), edge_band_means(reference, band)
    return {edge: out[edge] - ref[edge] for edge in EDGES}


def frame_measure(output: torch.Tensor, reference: torch.Tensor, band: int = 2) -> float:
    """The largest |edge-band mean difference| over the four edges, in levels."""
    return max(abs(v) for v in frame_offsets(output, reference, band).values())


def highpass(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Image minus its mean over a (2*scale+1)-px square that spans whole periods (reflect padded).

    The window is odd so it is centred; a phase-independent smooth image gives ~0 everywhere.
    """
    return highpass_bchw(_bchw(image), scale)


def highpass_bchw(image: torch.Tensor, scale: int) -> torch.Tensor:
    """`highpass` on a (B, C, H, W) tensor as is (device, dtype and gradient kept: usable as a loss)."""
    size = 2 * scale + 1
    padded = F.pad(image, (scale, scale, scale, scale), mode="reflect")
    return image - F.avg_pool2d(padded, size, stride=1)


def phase_means(image: torch.Tensor, scale: int, region: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """(scale, scale) mean high-pass value (levels) per output phase (y % scale, x % scale) in `region`.

    `region` = (y0, y1, x0, x1) in output pixels, snapped to whole periods; default: the image
    without a border of 4 periods (so the frame does not enter the grid figure).
    """
    hp = highpass(image, scale) * 255.0
    _, _, height, width = hp.shape
    if region is None:
        margin = 4 * scale
        region = (margin, height - margin, margin, width - margin)
    y0, y1, x0, x1 = region
    y0, x0 = -(-y0 // scale) * scale, -(-x0 // scale) * scale
    y1, x1 = y0 + (y1 - y0) // scale * scale, x0 + (x1 - x0) // scale * scale
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"region {region} holds no whole period of {scale} px")
    crop = hp[:, :, y0:y1, x0:x1]
    b, c, h, w = crop.shape
    return crop.reshape(b, c, h // scale, scale, w // scale, scale).mean(dim=(0, 1, 2, 4))


def grid_measure(image: torch.Tensor, scale: int, region: tuple[int, int, int, int] | None = None) -> float:
    """Phase spread: max - min of the per-phase mean high-pass value (levels) in `region`."""
    means = phase_means(image, scale, region)
    return (means.max() - means.min()).item()


def phase_offsets(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, scale, scale): per image and channel, the mean high-pass value of each output phase
    minus their average (0..1 units, differentiable); H and W must be multiples of `scale`."""
    hp = highpass_bchw(image, scale)
    b, c, h, w = hp.shape
    means = hp.reshape(b, c, h // scale, scale, w // scale, scale).mean(dim=(2, 4))
    return means - means.mean(dim=(2, 3), keepdim=True)
