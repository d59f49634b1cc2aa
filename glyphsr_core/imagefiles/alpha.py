"""Transparency around the method: it reads colour over white, and the file gets its alpha back.

OCR and the networks read an RGBA image as it looks on white paper (transparent areas are not
black blobs to them). The output then takes the input's alpha, upscaled with bicubic, and its colour
is un-composited from white, so the written RGBA shown on white is the image the method made (no
white fringe on a dark page), and pixels the method left alone keep their stored colour exactly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: below this alpha (of 255) a pixel's colour is not recoverable from its white composite (it is
#: kept as composited: invisible anyway)
_LEAST_ALPHA = 8


def composite_over_white(colour: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """RGB as the picture looks on white (`colour` "L" or "RGB", `alpha` "L" or None)."""
    rgb = colour.convert("RGB") if colour.mode != "RGB" else colour
    if alpha is None:
        return rgb
    values = np.asarray(rgb, dtype=np.float32)
    weight = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
    return Image.fromarray((values * weight + 255.0 * (1.0 - weight) + 0.5).astype(np.uint8))


def join_alpha(processed: Image.Image, alpha: Image.Image, original: Image.Image | None = None) -> Image.Image:
    """`processed` (the method's RGB or L result, over white) with `alpha` attached: RGBA or LA.

    `alpha` is resized to the result with bicubic when sizes differ. `original`: the input colour of
    the same size; pixels whose composite the method did not change keep that colour exactly.
    """
    if alpha.size != processed.size:
        alpha = alpha.resize(processed.size, Image.Resampling.BICUBIC)
    values = np.asarray(processed, dtype=np.float32)
    weight = np.asarray(alpha, dtype=np.float32) / 255.0
    if values.ndim == 3:
        weight = weight[..., None]
    visible = weight >= _LEAST_ALPHA / 255.0
    colour = np.where(visible, (values - 255.0 * (1.0 - weight)) / np.maximum(weight, 1e-6), values)
    colour = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
    if original is not None and original.size == processed.size:
        kept = np.asarray(original.convert(processed.mode))
        unchanged = np.asarray(composite_over_white(original, alpha).convert(processed.mode)) == \
            np.asarray(processed)
        if unchanged.ndim == 3:
            unchanged = unchanged.all(axis=-1, keepdims=True)
        colour = np.where(unchanged, kept, colour)
    joined = Image.fromarray(colour)
    joined.putalpha(alpha)
    return joined
