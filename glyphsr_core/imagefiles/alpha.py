"""Transparency around the method: it reads colour over white, and the file gets its alpha back.

OCR and the networks read an RGBA image as it looks on white paper (transparent areas are not
black blobs to them). The output then takes the input's alpha, upscaled with bicubic, and its colour
is un-composited from white, so the written RGBA shown on white is the image the method made (no
white fringe on a dark page), and pixels the method left alone keep their stored colour exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

#: below this alpha (of 255) a pixel's colour is not recoverable from its white composite (it is
#: kept as composited: invisible anyway)
_LEAST_ALPHA = 8
#: rows un-composited at a time: float temporaries stay small on huge images
_BAND_ROWS = 256


def composite_over_white(colour: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """RGB as the picture looks on white (`colour` "L" or "RGB", `alpha` "L" or None)."""
    rgb = colour.convert("RGB") if colour.mode != "RGB" else colour
    if alpha is None:
        return rgb
    return Image.composite(rgb, Image.new("RGB", rgb.size, (255, 255, 255)), alpha)


def join_alpha(processed: Image.Image, alpha: Image.Image, original: Image.Image | None = None) -> Image.Image:
    """`processed` (the method's RGB or L result, over white) with `alpha` attached: RGBA or LA.

    `alpha` is resized to the result with bicubic when sizes differ. `original`: the input colour of
    the same size; pixels whose composite the method did not change keep that colour exactly.
    """
    if alpha.size != processed.size:
        alpha = alpha.resize(processed.size, Image.Resampling.BICUBIC)
    values, weights = np.asarray(processed), np.asarray(alpha)
    colour = np.empty_like(values)
    for top in range(0, values.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        colour[rows] = _uncomposite(values[rows], weights[rows])
    if original is not None and original.size == processed.size:
        kept = np.asarray(original.convert(processed.mode))
        unchanged = np.asarray(composite_over_white(original, alpha).convert(processed.mode)) == values
        if unchanged.ndim == 3:
            unchanged = unchanged.all(axis=-1, keepdims=True)
        colour = np.where(unchanged, kept, colour)
    joined = Image.fromarray(colour)
    joined.putalpha(alpha)
    return joined


def _uncomposite(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The colour that, laid with `alpha` over white, gives `values` (uint8 in, uint8 out; a table look-up)."""
    index = alpha.astype(np.uint16) << 8
    return _uncomposite_table()[(index[..., None] if values.ndim == 3 else index) | values]


@lru_cache(maxsize=1)
def _uncomposite_table() -> np.ndarray:
    """colour[alpha * 256 + value] = (value - 255 (1 - a)) / a with a = alpha / 255, rounded, clipped."""
    alpha = np.arange(256, dtype=np.float64)[:, None]
    value = np.arange(256, dtype=np.float64)[None, :]
    colour = np.clip(np.floor((value - 255.0 + alpha) * 255.0 / np.maximum(alpha, 1.0) + 0.5), 0, 255)
    return np.where(alpha >= _LEAST_ALPHA, colour, value).astype(np.uint8).ravel()
